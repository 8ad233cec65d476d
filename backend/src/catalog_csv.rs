//! Parsing and validating the catalog CSV: every row checked, errors reported by line.
use std::collections::HashSet;

use serde::Serialize;

use crate::product::Product;

/// The header the shop's catalog export writes.
pub const HEADER: [&str; 19] = [
    "Handle",
    "Title",
    "Category",
    "Department",
    "Price",
    "Stock",
    "Image URL",
    "Fabric",
    "Occasion",
    "Color",
    "Work Type",
    "Dispatch Time",
    "Return Eligible",
    "Description",
    "SEO Title",
    "SEO Description",
    "Hero Prompt",
    "Detail Prompt",
    "Lifestyle Prompt",
];

/// Fields before the three image prompts.
const FIXED: usize = 16;
const MAX_ROWS: usize = 10_000;

/// One problem in the file, at a line (1 is the header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

/// Parses the whole file; returns every product or every error, never part of the file.
pub fn parse(data: &[u8]) -> Result<Vec<Product>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut errors = Vec::new();
    let mut products = Vec::new();
    let mut handles = HashSet::new();
    let mut record = csv::StringRecord::new();
    let mut first = true;
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                let line = error.position().map_or(line, csv::Position::line);
                errors.push(RowError {
                    line,
                    message: "unreadable CSV (not UTF-8 or broken quoting)".into(),
                });
                break;
            }
        }
        if first {
            first = false;
            if let Err(message) = check_header(&record) {
                errors.push(RowError { line, message });
                break;
            }
            continue;
        }
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        if products.len() + errors.len() >= MAX_ROWS {
            errors.push(RowError {
                line,
                message: format!("more than {MAX_ROWS} rows"),
            });
            break;
        }
        match product(&record) {
            Ok(product) => {
                if handles.insert(product.handle.clone()) {
                    products.push(product);
                } else {
                    errors.push(RowError {
                        line,
                        message: format!("duplicate handle `{}`", product.handle),
                    });
                }
            }
            Err(message) => errors.push(RowError { line, message }),
        }
    }
    if first {
        errors.push(RowError {
            line: 1,
            message: "the file is empty".into(),
        });
    } else if products.is_empty() && errors.is_empty() {
        errors.push(RowError {
            line: 2,
            message: "the file has no products".into(),
        });
    }
    if errors.is_empty() {
        Ok(products)
    } else {
        Err(errors)
    }
}

fn check_header(record: &csv::StringRecord) -> Result<(), String> {
    let given: Vec<&str> = record
        .iter()
        .map(|f| f.trim().trim_start_matches('\u{feff}'))
        .collect();
    let matches = given.len() == HEADER.len()
        && given
            .iter()
            .zip(HEADER)
            .all(|(given, expected)| given.eq_ignore_ascii_case(expected));
    if matches {
        Ok(())
    } else {
        Err(format!("expected the header `{}`", HEADER.join(",")))
    }
}

/// The three prompts. The shop's export leaves them unquoted, so a prompt with commas spans several
/// fields; each prompt ends with its `--ar` aspect-ratio field, which puts the pieces back together.
fn prompts(tail: &[&str]) -> Result<[String; 3], String> {
    if tail.len() == 3 {
        return Ok([tail[0].to_owned(), tail[1].to_owned(), tail[2].to_owned()]);
    }
    let mut prompts = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for field in tail {
        current.push(field);
        if field.trim_start().starts_with("--ar") {
            prompts.push(current.join(","));
            current.clear();
        }
    }
    if !current.is_empty() || prompts.len() != 3 {
        return Err(format!(
            "expected {} fields, found {}",
            HEADER.len(),
            FIXED + tail.len()
        ));
    }
    let [hero, detail, lifestyle]: [String; 3] = prompts
        .try_into()
        .map_err(|_| "expected three prompts".to_owned())?;
    Ok([hero, detail, lifestyle])
}

fn product(record: &csv::StringRecord) -> Result<Product, String> {
    let fields: Vec<&str> = record.iter().collect();
    if fields.len() < HEADER.len() {
        return Err(format!(
            "expected {} fields, found {}",
            HEADER.len(),
            fields.len()
        ));
    }
    let text = |i: usize| fields[i].trim().to_owned();
    let required = |i: usize| -> Result<String, String> {
        let value = text(i);
        if value.is_empty() {
            Err(format!("`{}` is empty", HEADER[i]))
        } else {
            Ok(value)
        }
    };
    let handle = required(0)?;
    if handle.len() > 100
        || !handle
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "`Handle` `{handle}` must be lowercase letters, digits and dashes"
        ));
    }
    let category = required(2)?;
    let price: i64 = text(4)
        .parse()
        .ok()
        .filter(|p| *p >= 0)
        .ok_or_else(|| format!("`Price` `{}` is not a whole number of rupees", text(4)))?;
    let stock: i32 = text(5)
        .parse()
        .ok()
        .filter(|s| *s >= 0)
        .ok_or_else(|| format!("`Stock` `{}` is not a count", text(5)))?;
    let image_url = text(6);
    if !image_url.is_empty()
        && !image_url.starts_with("https://")
        && !image_url.starts_with("http://")
    {
        return Err(format!("`Image URL` `{image_url}` is not an http(s) URL"));
    }
    let return_eligible = match text(12).to_ascii_lowercase().as_str() {
        "yes" | "true" => true,
        "no" | "false" | "" => false,
        other => return Err(format!("`Return Eligible` `{other}` is not Yes or No")),
    };
    let [hero_prompt, detail_prompt, lifestyle_prompt] = prompts(&fields[FIXED..])?;
    Ok(Product {
        handle,
        title: required(1)?,
        category,
        department: required(3)?,
        price,
        stock,
        image_url,
        fabric: text(7),
        occasion: text(8),
        color: text(9),
        work_type: text(10),
        dispatch_time: text(11),
        return_eligible,
        description: text(13),
        seo_title: text(14),
        seo_description: text(15),
        hero_prompt: hero_prompt.trim().to_owned(),
        detail_prompt: detail_prompt.trim().to_owned(),
        lifestyle_prompt: lifestyle_prompt.trim().to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HEAD: &str = "Handle,Title,Category,Department,Price,Stock,Image URL,Fabric,Occasion,Color,Work Type,\
        Dispatch Time,Return Eligible,Description,SEO Title,SEO Description,Hero Prompt,Detail Prompt,Lifestyle Prompt";

    fn row(handle: &str, price: &str) -> String {
        format!(
            "{handle},Red Silk Saree,kanchipuram-silk,Women,{price},3,https://x.example/a.jpg,Silk,Wedding,Red,Zari,\
             24 Hours,Yes,Nice.,SEO,SEO desc,bride in temple, golden light,--ar 3:4,macro weave,--ar 1:1,family, candid,--ar 16:9"
        )
    }

    #[test]
    fn unquoted_prompts_are_joined_back() {
        let data = format!("{HEAD}\n{}\n", row("red-silk", "100"));
        let products = parse(data.as_bytes())
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        assert_eq!(products.len(), 1);
        assert_eq!(
            products[0].hero_prompt,
            "bride in temple, golden light,--ar 3:4"
        );
        assert_eq!(products[0].detail_prompt, "macro weave,--ar 1:1");
        assert_eq!(products[0].lifestyle_prompt, "family, candid,--ar 16:9");
        assert!(products[0].return_eligible);
    }

    #[test]
    fn bad_rows_are_reported_by_line() {
        let data = format!(
            "{HEAD}\n{}\n{}\n{}\nshort,row\n",
            row("a", "10"),
            row("b", "ten"),
            row("a", "5")
        );
        let errors = parse(data.as_bytes()).unwrap_err();
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(errors[0].message.contains("`Price` `ten`"), "{errors:?}");
        assert!(
            errors[1].message.contains("duplicate handle `a`"),
            "{errors:?}"
        );
        assert!(
            errors[2].message.contains("expected 19 fields, found 2"),
            "{errors:?}"
        );
    }

    #[test]
    fn wrong_header_is_refused() {
        let errors = parse(b"Name,Price\nx,1\n").unwrap_err();
        assert_eq!(errors[0].line, 1);
    }

    #[test]
    fn the_shop_catalog_parses() {
        let data = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/catalog.csv"
        ))
        .unwrap();
        let products = parse(&data).map_err(|e| format!("{e:?}")).unwrap();
        assert_eq!(products.len(), 50);
        assert!(
            products
                .iter()
                .all(|p| p.lifestyle_prompt.ends_with("--ar 16:9"))
        );
    }
}
