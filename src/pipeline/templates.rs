//! Summary prompt templates: the `.md` files in the prompts folder (the folder of
//! `PROMPT_PATH`). A job may name one (`"template": "one_on_one"`); the name is checked here,
//! once, so it never reaches the file system unchecked.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

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

/// The template names of a folder, listed again only when the folder has changed. Every page
/// with the add form shows them, and listing costs a directory read and a look at each file
/// (measured: 3.5% of the list page's CPU); a look at the folder's modification time does not.
/// Adding, removing or renaming a template changes it, so operators still see a new template
/// on the next page. A folder changed within the last [`Self::SETTLED`] is listed every time:
/// two changes within one tick of the file system's clock leave one time.
#[derive(Debug, Default)]
pub struct Names {
    kept: Mutex<Option<Listing>>,
}

/// A folder, its modification time when it was listed, and the names found.
type Listing = (PathBuf, SystemTime, Arc<[String]>);

impl Names {
    const SETTLED: Duration = Duration::from_secs(1);

    /// [`list`] of `dir`, from the last listing when the folder has not changed since.
    pub fn list(&self, dir: &Path) -> Arc<[String]> {
        // A folder that cannot be looked at cannot be listed either (no folder: no templates).
        let Ok(metadata) = std::fs::metadata(dir) else {
            return Arc::from([]);
        };
        let modified = metadata.modified().ok();
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(modified), Some((kept_dir, kept_time, names))) = (modified, kept.as_ref())
            && kept_dir == dir
            && *kept_time == modified
        {
            return names.clone();
        }
        let names: Arc<[String]> = list(dir).into();
        let settled = modified
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age >= Self::SETTLED);
        *kept = match modified {
            Some(modified) if settled => Some((dir.to_path_buf(), modified, names.clone())),
            _ => None,
        };
        names
    }
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
    fn names_are_listed_again_when_the_folder_changes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("meeting_summary.md"), "x").unwrap();
        let age = |seconds| {
            let folder = std::fs::File::open(dir.path()).unwrap();
            folder
                .set_modified(SystemTime::now() - Duration::from_secs(seconds))
                .unwrap();
            std::fs::metadata(dir.path()).unwrap().modified().unwrap()
        };
        let names = Names::default();
        let hour_ago = age(3600);
        assert_eq!(&*names.list(dir.path()), ["meeting_summary"]);
        // A file added with the folder's time put back: the kept names are answered (so they
        // were kept, not listed again).
        std::fs::write(dir.path().join("one_on_one.md"), "x").unwrap();
        std::fs::File::open(dir.path())
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        assert_eq!(&*names.list(dir.path()), ["meeting_summary"]);
        // The folder's time moved: listed again.
        age(1800);
        assert_eq!(&*names.list(dir.path()), ["meeting_summary", "one_on_one"]);
        // Changed just now: listed every time, so a second change in the same tick is seen.
        std::fs::write(dir.path().join("retro.md"), "x").unwrap();
        assert_eq!(names.list(dir.path()).len(), 3);
        std::fs::remove_file(dir.path().join("retro.md")).unwrap();
        assert_eq!(names.list(dir.path()).len(), 2);
        // Another folder is listed for itself.
        let other = tempfile::tempdir().unwrap();
        assert!(names.list(other.path()).is_empty());
        // A folder that is not there has no templates, and is seen once it is made.
        let missing = other.path().join("prompts");
        assert!(names.list(&missing).is_empty());
        std::fs::create_dir(&missing).unwrap();
        std::fs::write(missing.join("standup.md"), "x").unwrap();
        assert_eq!(&*names.list(&missing), ["standup"]);
        // And when it goes away again, its kept names go with it.
        std::fs::remove_dir_all(&missing).unwrap();
        assert!(names.list(&missing).is_empty());
    }

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
