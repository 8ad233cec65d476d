//! Shell completions and the manual page, generated from the command line's own definitions.

use std::io::Write as _;

use clap::CommandFactory;

use crate::cli::Cli;

/// Writes the completion script for `shell` to stdout; the exit code.
pub(crate) fn completions(shell: clap_complete::Shell) -> i32 {
    // Into memory first: the generator panics on a write error (a closed pipe), a plain write does not.
    let script = completion_script(shell);
    let mut out = std::io::stdout().lock();
    i32::from(out.write_all(&script).and_then(|()| out.flush()).is_err())
}

fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "vldeploy", &mut script);
    script
}

/// Writes the manual page (roff) to stdout, every subcommand included; the exit code.
pub(crate) fn man_page() -> i32 {
    let mut page = Vec::new();
    if render_man(&mut page).is_err() {
        return 1;
    }
    let mut out = std::io::stdout().lock();
    i32::from(out.write_all(&page).and_then(|()| out.flush()).is_err())
}

/// The page for the top command, then one section per subcommand with its own options.
fn render_man(out: &mut Vec<u8>) -> std::io::Result<()> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("vldeploy {}", sub.get_name());
        writeln!(out, ".SH \"{name}\"")?;
        let page = clap_mangen::Man::new(sub.clone().name(name.clone()).bin_name(name));
        let mut body = Vec::new();
        page.render_synopsis_section(&mut body)?;
        page.render_description_section(&mut body)?;
        page.render_options_section(&mut body)?;
        if sub.has_subcommands() {
            page.render_subcommands_section(&mut body)?;
        }
        // Each part starts with its own `.SH`; inside the subcommand's section they become subsections.
        for line in String::from_utf8_lossy(&body).lines() {
            if line.starts_with(".ie ") || line.starts_with(".el ") {
                continue; // the string definitions at the top of the page hold for the whole page
            }
            let line = line
                .strip_prefix(".SH ")
                .map_or_else(|| line.to_string(), |h| format!(".SS {h}"));
            writeln!(out, "{line}")?;
        }
    }
    man.render_version_section(out)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_man_page_has_a_section_per_visible_command() {
        let mut page = Vec::new();
        render_man(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.starts_with(".ie \\n(.g .ds Aq \\(aq"),
            "{}",
            &page[..80]
        );
        for cmd in Cli::command().get_subcommands() {
            let heading = format!(".SH \"vldeploy {}\"", cmd.get_name());
            assert_eq!(
                page.contains(&heading),
                !cmd.is_hide_set(),
                "`{heading}` in the page: {}",
                !cmd.is_hide_set()
            );
        }
        assert!(
            page.contains("\\-\\-exit\\-code"),
            "plan's options are listed"
        );
        assert!(
            !page.contains(".SS SUBCOMMANDS\n.SH"),
            "no empty subcommand lists"
        );
    }

    #[test]
    fn the_bash_completion_parses_and_knows_every_command() {
        let script = String::from_utf8(completion_script(clap_complete::Shell::Bash)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vldeploy.bash");
        std::fs::write(&file, &script).unwrap();
        let out = std::process::Command::new("bash")
            .arg("-n")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bash -n: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for cmd in Cli::command()
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
        {
            assert!(
                script.contains(&format!(
                    "vldeploy__subcmd__{}",
                    cmd.get_name().replace('-', "__")
                )),
                "{}",
                cmd.get_name()
            );
        }
        for shell in [clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            let s = String::from_utf8(completion_script(shell)).unwrap();
            assert!(
                s.contains("restore") && s.contains("maintenance"),
                "{shell}"
            );
        }
    }
}
