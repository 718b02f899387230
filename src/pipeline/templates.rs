//! Summary prompt templates: the `.md` files in the prompts folder (the folder of
//! `PROMPT_PATH`). A job may name one (`"template": "one_on_one"`); the name is checked here,
//! once, so it never reaches the file system unchecked.

use std::path::{Path, PathBuf};

/// Files in the prompts folder that are not summary templates.
const NOT_TEMPLATES: &[&str] = &["title_generator", "ask"];

/// `[a-z0-9_-]+`, at most 64 characters.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The names of the summary templates in `dir`, sorted.
pub fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| entry.path().is_file())
                .filter_map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let stem = name.strip_suffix(".md")?.to_string();
                    (is_valid_name(&stem) && !NOT_TEMPLATES.contains(&stem.as_str()))
                        .then_some(stem)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Why a template name was refused.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UnknownTemplate {
    pub message: String,
    pub available: Vec<String>,
}

/// The template file for `name`, if the name is valid and the file exists.
pub fn resolve(dir: &Path, name: &str) -> Result<PathBuf, UnknownTemplate> {
    let available = list(dir);
    let refuse = |why: String| UnknownTemplate {
        message: format!(
            "{why}; available templates: {}",
            if available.is_empty() {
                "none".to_string()
            } else {
                available.join(", ")
            }
        ),
        available: available.clone(),
    };
    if !is_valid_name(name) {
        return Err(refuse(format!(
            "\"template\" must be a name of lowercase letters, digits, '_' or '-' (got {name:?})"
        )));
    }
    if !available.iter().any(|known| known == name) {
        return Err(refuse(format!("there is no template named {name:?}")));
    }
    Ok(dir.join(format!("{name}.md")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_against_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "meeting_summary.md",
            "one_on_one.md",
            "title_generator.md",
            "Bad Name.md",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(file), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("folder.md")).unwrap();
        assert_eq!(list(dir.path()), vec!["meeting_summary", "one_on_one"]);
        assert_eq!(
            resolve(dir.path(), "one_on_one").unwrap(),
            dir.path().join("one_on_one.md")
        );
        for bad in [
            "../etc/passwd",
            "One",
            "interview",
            "",
            "title_generator",
            "a.md",
        ] {
            let error = resolve(dir.path(), bad).unwrap_err();
            assert!(
                error.to_string().contains("meeting_summary, one_on_one"),
                "{error}"
            );
        }
    }
}
