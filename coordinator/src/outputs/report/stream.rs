//! `results.json` read as a stream of trial records: the document's header (format, sweep,
//! experiments) is kept, and each element of its `trials` array is handed to a callback as soon
//! as it is parsed and then dropped, so reading a sweep of a million trials holds one trial at a
//! time (the report keeps what it needs of each, [`super::pass`]).

use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use sweep_common::results::{FORMAT, Results, Trial};

use super::Error;

/// Reads `path`, calling `on_trial` with each trial in file order; returns the document without
/// its trials. An error of `on_trial` stops the reading and is returned as it is; a newer
/// format is refused as soon as it is read.
pub fn each_trial(
    path: &Path,
    on_trial: impl FnMut(Trial<'static>) -> Result<(), Error>,
) -> Result<Results<'static>, Error> {
    each_trial_with(path, |_| {}, on_trial)
}

/// [`each_trial`], calling `on_header` first with the header as read up to the `trials` array
/// (all of it when, as the coordinator writes it, the header comes first).
pub fn each_trial_with(
    path: &Path,
    mut on_header: impl FnMut(&Results<'static>),
    mut on_trial: impl FnMut(Trial<'static>) -> Result<(), Error>,
) -> Result<Results<'static>, Error> {
    let file = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut failed = None;
    let seed = Document {
        on_header: &mut on_header,
        on_trial: &mut on_trial,
        failed: &mut failed,
        path,
    };
    let parsed = seed.deserialize(&mut de).and_then(|header| {
        de.end()?;
        Ok(header)
    });
    match (parsed, failed) {
        (_, Some(e)) => Err(e),
        (Ok(header), None) => Ok(header),
        (Err(source), None) => Err(match source.io_error_kind() {
            Some(kind) => Error::Read {
                path: path.to_owned(),
                source: std::io::Error::new(kind, source),
            },
            None => Error::Parse {
                path: path.to_owned(),
                source,
            },
        }),
    }
}

/// The whole document: its fields in any order, `trials` visited one at a time.
struct Document<'f, H, F> {
    on_header: &'f mut H,
    on_trial: &'f mut F,
    failed: &'f mut Option<Error>,
    path: &'f Path,
}

impl<'de, H, F> DeserializeSeed<'de> for Document<'_, H, F>
where
    H: FnMut(&Results<'static>),
    F: FnMut(Trial<'static>) -> Result<(), Error>,
{
    type Value = Results<'static>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, H, F> Visitor<'de> for Document<'_, H, F>
where
    H: FnMut(&Results<'static>),
    F: FnMut(Trial<'static>) -> Result<(), Error>,
{
    type Value = Results<'static>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a results document (an object)")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut header = Results {
            format: FORMAT,
            sweep: String::new(),
            grid_file: String::new(),
            finished: false,
            experiments: Vec::new(),
            trials: Vec::new(),
        };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "format" => {
                    header.format = map.next_value()?;
                    if header.format > FORMAT {
                        return Err(self.fail(Error::Format {
                            path: self.path.to_owned(),
                            found: header.format,
                        }));
                    }
                }
                "sweep" => header.sweep = map.next_value()?,
                "grid_file" => header.grid_file = map.next_value()?,
                "finished" => header.finished = map.next_value()?,
                "experiments" => header.experiments = map.next_value()?,
                "trials" => {
                    (self.on_header)(&header);
                    map.next_value_seed(Trials {
                        on_trial: &mut *self.on_trial,
                        failed: &mut *self.failed,
                    })?
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(header)
    }
}

impl<H, F> Document<'_, H, F> {
    /// Keeps `e` to be returned, and stops the parser.
    fn fail<E: de::Error>(&mut self, e: Error) -> E {
        *self.failed = Some(e);
        E::custom("stopped")
    }
}

/// The `trials` array, each element handed to the callback.
struct Trials<'f, F> {
    on_trial: &'f mut F,
    failed: &'f mut Option<Error>,
}

impl<'de, F> DeserializeSeed<'de> for Trials<'_, F>
where
    F: FnMut(Trial<'static>) -> Result<(), Error>,
{
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F> Visitor<'de> for Trials<'_, F>
where
    F: FnMut(Trial<'static>) -> Result<(), Error>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of trials")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(trial) = seq.next_element::<Trial<'static>>()? {
            if let Err(e) = (self.on_trial)(trial) {
                *self.failed = Some(e);
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), text).expect("write");
        f
    }

    #[test]
    fn trials_come_one_at_a_time_and_the_header_whatever_its_place() {
        let fixture = include_str!("../../../tests/fixtures/results_small.json");
        let whole: Results<'static> = serde_json::from_str(fixture).expect("fixture");
        // The header's keys after the trials, and a key this version does not know.
        let mut v: serde_json::Value = serde_json::from_str(fixture).expect("fixture");
        let trials = v["trials"].take();
        let obj = v.as_object_mut().expect("object");
        obj.remove("trials");
        let mut reordered = serde_json::Map::new();
        reordered.insert("trials".into(), trials);
        reordered.insert("unknown".into(), serde_json::json!({"a": [1, 2]}));
        reordered.extend(obj.clone());
        for text in [
            fixture.to_owned(),
            serde_json::Value::Object(reordered).to_string(),
        ] {
            let f = file(&text);
            let mut seen = Vec::new();
            let header = each_trial(f.path(), |t| {
                seen.push(t);
                Ok(())
            })
            .expect("reads");
            assert_eq!(seen, whole.trials);
            assert!(header.trials.is_empty());
            assert_eq!(
                Results {
                    trials: whole.trials.clone(),
                    ..header
                },
                whole
            );
        }
    }

    #[test]
    fn a_newer_format_a_bad_trial_and_a_callback_error_stop_the_reading() {
        let f = file(r#"{"format": 999, "trials": [{"nonsense": true}]}"#);
        let e = each_trial(f.path(), |_| Ok(())).expect_err("newer format");
        assert!(matches!(e, Error::Format { found: 999, .. }), "{e}");

        let f = file(r#"{"trials": [{"nonsense": true}]}"#);
        let e = each_trial(f.path(), |_| Ok(())).expect_err("bad trial");
        assert!(matches!(e, Error::Parse { .. }), "{e}");
        assert!(
            e.to_string().contains(&f.path().display().to_string()),
            "{e}"
        );

        let fixture = include_str!("../../../tests/fixtures/results_small.json");
        let f = file(fixture);
        let mut calls = 0;
        let e = each_trial(f.path(), |_| {
            calls += 1;
            Err(Error::Write {
                path: "x".into(),
                source: std::io::Error::other("disk full"),
            })
        })
        .expect_err("callback error");
        assert_eq!(calls, 1);
        assert!(e.to_string().contains("disk full"), "{e}");
    }
}
