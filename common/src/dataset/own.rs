//! A user's own data set: a NumPy `.npz` file named by its path in the grid file. The grid
//! loader reads the file's facts (shapes, label range, class names, SHA-256) through an
//! [`OwnDataReader`] (the coordinator passes `sweep_data::npz::read_facts`), so a bad file is
//! refused at load; [`OwnData`] is those facts interned, so `DatasetKind` stays `Copy`.

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

/// Most distinct own data sets one process keeps (see [`OwnData::new`]).
pub const MAX_OWN_DATASETS: usize = 64;
/// Most classes an own data set may have (labels are stored as bytes).
pub const MAX_OWN_CLASSES: usize = 256;
/// Largest image side (height or width) of an own data set.
pub const MAX_OWN_SIDE: usize = 4096;
/// Most channels of an own data set's images.
pub const MAX_OWN_CHANNELS: usize = 4;

/// Longest path of an own data file, in characters.
pub const MAX_OWN_PATH_CHARS: usize = 1024;
/// Longest class name, in characters.
pub const MAX_CLASS_NAME_CHARS: usize = 64;

/// What the grid loader and the workers know of a user's `.npz` file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OwnFacts {
    /// The file as the grid file names it (relative to the grid file, or absolute): its name in
    /// reports and, with the SHA-256, in trial ids.
    pub file: String,
    /// Where the coordinator read it (absolute). A worker on the same machine reads it there; one
    /// elsewhere looks for the file's name in its `--data-dir`. Not part of trial ids.
    pub path: String,
    /// Lowercase hex SHA-256 of the file's bytes: part of trial ids, checked by the worker.
    pub sha256: String,
    /// Image shape (channels, height, width).
    pub shape: [usize; 3],
    /// Images in `x_train`.
    pub train_len: usize,
    /// Images in `x_test` (0: the file has none, and trials split `x_train` by `split_ratio`).
    pub test_len: usize,
    /// Class names, indexed by label (the labels as text when the file has no `class_names`).
    pub class_names: Vec<String>,
}

impl OwnFacts {
    /// Checks the facts a file or a peer gave; the message names the field.
    pub fn check(&self) -> Result<(), String> {
        let [c, h, w] = self.shape;
        if !(1..=MAX_OWN_CHANNELS).contains(&c)
            || !(1..=MAX_OWN_SIDE).contains(&h)
            || !(1..=MAX_OWN_SIDE).contains(&w)
        {
            return Err(format!(
                "shape ({c}, {h}, {w}): channels 1..={MAX_OWN_CHANNELS}, sides 1..={MAX_OWN_SIDE}"
            ));
        }
        if !(1..=MAX_OWN_CLASSES).contains(&self.class_names.len()) {
            return Err(format!(
                "{} class names: 1 to {MAX_OWN_CLASSES} allowed",
                self.class_names.len()
            ));
        }
        if self.train_len == 0 {
            return Err("train_len: no training image".into());
        }
        if self.sha256.len() != 64
            || !self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!("sha256 {:?}: 64 lowercase hex digits", self.sha256));
        }
        if self.file.is_empty() || !self.file.ends_with(".npz") {
            return Err(format!("file {:?}: a path ending in .npz", self.file));
        }
        for (field, text) in [("file", &self.file), ("path", &self.path)] {
            crate::text::check(text, MAX_OWN_PATH_CHARS).map_err(|e| format!("{field}: {e}"))?;
        }
        for (label, name) in self.class_names.iter().enumerate() {
            crate::text::check(name, MAX_CLASS_NAME_CHARS)
                .map_err(|e| format!("class name of label {label}: {e}"))?;
        }
        Ok(())
    }

    /// The file's name (its last path component), as a worker looks for it in `--data-dir`.
    pub fn file_name(&self) -> &str {
        Path::new(&self.file)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&self.file)
    }
}

/// Reads an own data file's facts for the grid loader; the error says what is wrong with it,
/// naming the file as the grid does (`file`), and becomes the message at the `dataset` entry.
pub trait OwnDataReader {
    /// The facts of the `.npz` file at `path`, which the grid file names `file`.
    fn read(&self, path: &Path, file: &str) -> Result<OwnFacts, String>;
}

/// The reader of [`crate::grid::Grid::parse`]: own data cannot be read there.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOwnData;

impl OwnDataReader for NoOwnData {
    fn read(&self, _: &Path, _: &str) -> Result<OwnFacts, String> {
        Err(
            "a .npz dataset is read when the coordinator loads the grid file; \
             this command does not read data files"
                .into(),
        )
    }
}

/// A user's `.npz` data set: its checked facts, kept for the process's life so that
/// `DatasetKind` stays `Copy` (at most [`MAX_OWN_DATASETS`] distinct ones).
#[derive(Clone, Copy)]
pub struct OwnData(&'static Kept);

struct Kept {
    facts: OwnFacts,
    names: Vec<&'static str>,
}

impl OwnData {
    /// Checks and keeps `facts`; the same facts give the same `OwnData`.
    pub fn new(facts: OwnFacts) -> Result<OwnData, String> {
        facts.check()?;
        static KEPT: OnceLock<Mutex<Vec<&'static Kept>>> = OnceLock::new();
        let kept = KEPT.get_or_init(|| Mutex::new(Vec::new()));
        let mut kept = kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(k) = kept.iter().find(|k| k.facts == facts) {
            return Ok(OwnData(k));
        }
        if kept.len() >= MAX_OWN_DATASETS {
            return Err(format!(
                "more than {MAX_OWN_DATASETS} distinct .npz datasets in one process"
            ));
        }
        let names = facts
            .class_names
            .iter()
            .map(|n| &*Box::leak(n.clone().into_boxed_str()))
            .collect();
        let k: &'static Kept = Box::leak(Box::new(Kept { facts, names }));
        kept.push(k);
        Ok(OwnData(k))
    }

    /// The facts.
    pub fn facts(self) -> &'static OwnFacts {
        &self.0.facts
    }

    /// The file as the grid names it.
    pub fn file(self) -> &'static str {
        &self.0.facts.file
    }

    /// Class names, indexed by label.
    pub fn class_names(self) -> &'static [&'static str] {
        &self.0.names
    }

    /// What trial ids name: the file as the grid names it and its content's hash.
    pub fn canonical(self) -> String {
        format!("npz:{}@sha256:{}", self.0.facts.file, self.0.facts.sha256)
    }
}

impl PartialEq for OwnData {
    fn eq(&self, other: &Self) -> bool {
        self.0.facts == other.0.facts
    }
}
impl Eq for OwnData {}
impl std::hash::Hash for OwnData {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.facts.hash(state);
    }
}
impl PartialOrd for OwnData {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OwnData {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.facts.cmp(&other.0.facts)
    }
}

impl fmt::Debug for OwnData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0.facts, f)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::path::PathBuf;

    use super::*;
    use crate::DatasetKind;
    use crate::grid::Grid;

    /// Gives fixed facts with the SHA-256 `sha`, or `error`; records the paths it was asked.
    struct Fake {
        sha: char,
        error: Option<&'static str>,
        asked: RefCell<Vec<PathBuf>>,
    }

    impl Fake {
        fn new(sha: char) -> Self {
            Fake {
                sha,
                error: None,
                asked: RefCell::new(Vec::new()),
            }
        }
    }

    impl OwnDataReader for Fake {
        fn read(&self, path: &Path, file: &str) -> Result<OwnFacts, String> {
            self.asked.borrow_mut().push(path.to_owned());
            if let Some(e) = self.error {
                return Err(e.to_owned());
            }
            Ok(OwnFacts {
                file: file.to_owned(),
                path: format!("/abs/{file}"),
                sha256: self.sha.to_string().repeat(64),
                shape: [1, 8, 8],
                train_len: 40,
                test_len: 10,
                class_names: vec!["cat".into(), "dog".into(), "emu".into()],
            })
        }
    }

    const GRID: &str = "[sweep]\nname = 's'\n[[experiment]]\nname = 'e'\n\
        dataset = 'data/own.npz'\n[experiment.grid]\nlearning_rate = [0.1, 0.01]\n\
        model = ['conv(4, 3, p=1) relu flatten linear(3)']\n";

    #[test]
    fn a_grid_names_its_own_file_relative_to_itself() {
        let fake = Fake::new('a');
        let g = Grid::parse_with(GRID, "sweeps/grid.toml", &fake).unwrap();
        assert_eq!(
            *fake.asked.borrow(),
            vec![PathBuf::from("sweeps/data/own.npz")]
        );
        let d = g.experiments[0].dataset;
        assert_eq!(d.name(), "data/own.npz");
        assert_eq!(d.image_shape(), [1, 8, 8]);
        assert_eq!(d.num_classes(), 3);
        assert_eq!(d.class_names(), &["cat", "dog", "emu"]);
        assert_eq!(d.official_train_len(), 50);
        let t = &g.experiments[0].trials[0];
        assert_eq!(t.parts(50), (40, 10));
        assert_eq!(t.content_id(), t.id);
        // The trial's id names the file's content: another file under the same name, other ids.
        let other = Grid::parse_with(GRID, "sweeps/grid.toml", &Fake::new('b')).unwrap();
        assert_ne!(other.experiments[0].trials[0].id, t.id);
        // Moving the sweep's folder (the absolute path) keeps them.
        assert_eq!(
            Grid::parse_with(GRID, "elsewhere/g.toml", &fake)
                .unwrap()
                .experiments[0]
                .trials[0]
                .id,
            t.id
        );
    }

    #[test]
    fn a_bad_file_is_refused_where_the_grid_names_it() {
        let fake = Fake {
            error: Some("corrupt own.npz (member y_train): label out of range"),
            ..Fake::new('a')
        };
        let e = Grid::parse_with(GRID, "g.toml", &fake)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("g.toml:5:11: "), "{e}");
        assert!(e.contains("experiment[0].dataset"), "{e}");
        assert!(
            e.contains("dataset: corrupt own.npz (member y_train)"),
            "{e}"
        );
        // Without a reader (commands that do not read data files) it says so.
        let e = Grid::parse(GRID, "g.toml").unwrap_err().to_string();
        assert!(
            e.contains("read when the coordinator loads the grid file"),
            "{e}"
        );
    }

    #[test]
    fn a_model_that_does_not_fit_the_file_is_refused() {
        let grid = GRID.replace("linear(3)", "linear(10)");
        let e = Grid::parse_with(&grid, "g.toml", &Fake::new('a'))
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 classes"), "{e}");
    }

    #[test]
    fn facts_round_trip_through_json_and_are_kept_once() {
        let facts = Fake::new('c').read(Path::new("x"), "own.npz").unwrap();
        let d = DatasetKind::Own(OwnData::new(facts.clone()).unwrap());
        let json = serde_json::to_string(&d).unwrap();
        let back: DatasetKind = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert!(std::ptr::eq(
            back.own().unwrap().facts(),
            d.own().unwrap().facts()
        ));
        let cifar: DatasetKind = serde_json::from_str("\"cifar10\"").unwrap();
        assert_eq!(cifar, DatasetKind::Cifar10);
        assert_eq!(serde_json::to_string(&cifar).unwrap(), "\"cifar10\"");
        assert_eq!(
            d.canonical(),
            format!("npz:own.npz@sha256:{}", "c".repeat(64))
        );
    }

    #[test]
    fn facts_are_checked() {
        let good = Fake::new('d').read(Path::new("x"), "own.npz").unwrap();
        let bad = |f: fn(&mut OwnFacts)| {
            let mut facts = good.clone();
            f(&mut facts);
            OwnData::new(facts).unwrap_err()
        };
        assert!(bad(|f| f.shape = [5, 8, 8]).contains("channels"));
        assert!(bad(|f| f.class_names.clear()).contains("class names"));
        assert!(bad(|f| f.sha256 = "AB".into()).contains("sha256"));
        assert!(bad(|f| f.train_len = 0).contains("train_len"));
        assert!(bad(|f| f.class_names[1] = "a\u{202e}b".into()).contains("label 1"));
        assert!(bad(|f| f.file = "own.csv".into()).contains(".npz"));
    }
}
