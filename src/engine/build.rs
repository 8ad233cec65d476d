//! The one image build: a packed context sent to the engine's classic builder, its output kept for errors.

use std::collections::HashMap;

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::Engine;

/// A build that failed: what the engine said, and the build output up to then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildFailure {
    pub message: String,
    /// Non-empty output lines, oldest first.
    pub output: Vec<String>,
}

impl BuildFailure {
    /// The last `n` output lines.
    pub fn tail(&self, n: usize) -> &[String] {
        &self.output[self.output.len().saturating_sub(n)..]
    }
}

/// What a build is made from: the packed context, the Dockerfile's path in it, the build arguments and
/// the IDs of the images it builds `FROM`. Its hash names an image's inputs wherever vldeploy builds one.
#[derive(Debug, Clone, Copy)]
pub struct BuildInputs<'a> {
    pub context: &'a [u8],
    pub dockerfile: &'a str,
    pub args: &'a HashMap<String, String>,
    pub bases: &'a [String],
}

impl BuildInputs<'_> {
    /// The sha256 (hex) of the inputs; the same inputs give the same hash.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.context);
        h.update(self.dockerfile.as_bytes());
        let mut args: Vec<_> = self.args.iter().collect();
        args.sort();
        for (k, v) in args {
            h.update(format!("\0{k}={v}").as_bytes());
        }
        for id in self.bases {
            h.update(format!("\0FROM {id}").as_bytes());
        }
        hex::encode(h.finalize())
    }
}

impl Engine {
    /// Builds `inputs` as `tag` with the classic builder, the image carrying `labels`. The build output goes
    /// to the debug log; a failure carries it.
    pub async fn build(
        &self,
        inputs: &BuildInputs<'_>,
        tag: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(), BuildFailure> {
        let opts = BuildImageOptionsBuilder::new()
            .dockerfile(inputs.dockerfile)
            .t(tag)
            .rm(true)
            .forcerm(true)
            .buildargs(inputs.args)
            .labels(labels)
            .build();
        let body = bollard::body_full(inputs.context.to_vec().into());
        let mut stream = self.docker.build_image(opts, None, Some(body));
        let mut output: Vec<String> = Vec::new();
        let fail = |message: String, output: Vec<String>| BuildFailure { message, output };
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(fail(error, output));
                }
                Err(e) => return Err(fail(e.to_string(), output)),
            };
            if let Some(text) = info.stream {
                for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                    tracing::debug!(image = tag, "{line}");
                    output.push(line.to_owned());
                }
            }
            if let Some(err) = info.error_detail.and_then(|d| d.message) {
                return Err(fail(err, output));
            }
        }
        match self.has_image(tag).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(fail(
                "the engine reported no error but the image does not exist".to_owned(),
                output,
            )),
            Err(e) => Err(fail(e.to_string(), output)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inputs_hash_follows_context_dockerfile_arguments_and_bases() {
        let args: HashMap<String, String> = [("BASE".to_owned(), "b:1".to_owned())].into();
        let other_args: HashMap<String, String> = [("BASE".to_owned(), "b:2".to_owned())].into();
        let one = BuildInputs {
            context: b"tar",
            dockerfile: "Dockerfile",
            args: &args,
            bases: &[],
        };
        let bases = ["sha256:1".to_owned()];
        assert_eq!(one.hash(), BuildInputs { ..one }.hash());
        assert_eq!(one.hash().len(), 64);
        for other in [
            BuildInputs {
                context: b"tar2",
                ..one
            },
            BuildInputs {
                dockerfile: "x.Dockerfile",
                ..one
            },
            BuildInputs {
                args: &other_args,
                ..one
            },
            BuildInputs {
                bases: &bases,
                ..one
            },
        ] {
            assert_ne!(one.hash(), other.hash());
        }
    }

    #[test]
    fn a_failure_keeps_the_last_lines() {
        let f = BuildFailure {
            message: "boom".into(),
            output: (1..=5).map(|i| i.to_string()).collect(),
        };
        assert_eq!(f.tail(2), ["4", "5"]);
        assert_eq!(f.tail(9).len(), 5);
    }
}
