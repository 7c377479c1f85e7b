//! The comparison views' rows ([`super::compare::Row`]), one per trial, written into
//! `report.html` without being held: during the pass each trial's cells go to a spool (a
//! temporary file beside the report, or memory for a report made in memory) as a line of JSON
//! fragments, already escaped for the page; at the end, when the hyperparameters the views show
//! are known, [`Spool::write_rows`] reads the spool back once per experiment and writes each
//! row's JSON as `serde_json` would write the [`super::compare::Row`].

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use sweep_common::grid::Param;
use sweep_common::results::Trial;

use super::analysis::LayoutAxis;
use super::compare;

/// Where the lines go.
enum Sink {
    Memory(Vec<u8>),
    File {
        path: PathBuf,
        file: BufWriter<File>,
    },
}

/// The rows written so far.
pub struct Spool {
    sink: Sink,
}

/// A JSON value's text, escaped for the page.
fn fragment(v: &serde_json::Value) -> String {
    compare::escape_embedded(&serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned()))
}

impl Spool {
    /// A spool in memory.
    pub fn memory() -> Self {
        Spool {
            sink: Sink::Memory(Vec::new()),
        }
    }

    /// A spool in the file `path` (created; removed when the spool is dropped).
    pub fn file(path: PathBuf) -> std::io::Result<Self> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        Ok(Spool {
            sink: Sink::File {
                path,
                file: BufWriter::with_capacity(1 << 20, file),
            },
        })
    }

    /// The spool's file, if it has one.
    pub fn path(&self) -> Option<&Path> {
        match &self.sink {
            Sink::Memory(_) => None,
            Sink::File { path, .. } => Some(path),
        }
    }

    /// Adds the row of `t`, of the experiment at `experiment` in the document's order, whose
    /// layout axes are `axes`.
    pub fn add(
        &mut self,
        experiment: usize,
        t: &Trial<'_>,
        axes: &[LayoutAxis],
    ) -> std::io::Result<()> {
        let (fixed, params) = compare::row_cells(t, axes);
        let mut line = experiment.to_string();
        for v in fixed.iter().chain(&params) {
            line.push('\t');
            line.push_str(&fragment(v));
        }
        line.push('\n');
        match &mut self.sink {
            Sink::Memory(v) => v.extend_from_slice(line.as_bytes()),
            Sink::File { file, .. } => file.write_all(line.as_bytes())?,
        }
        Ok(())
    }

    /// Writes the rows, comma-separated, experiment by experiment (each experiment's in the
    /// order they came): `params` are the columns the views show, `own[x]` those experiment `x`
    /// varies (the others are `null` in its rows).
    pub fn write_rows(
        &mut self,
        params: &[Param],
        own: &[Vec<Param>],
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        let mut first = true;
        for (x, own) in own.iter().enumerate() {
            let columns: Vec<Option<usize>> = params
                .iter()
                .map(|p| {
                    own.contains(p)
                        .then(|| Param::ALL.iter().position(|q| q == p))
                        .flatten()
                })
                .collect();
            let x_text = x.to_string();
            self.each_line(|line| {
                let mut fields = line.split('\t');
                if fields.next() != Some(x_text.as_str()) {
                    return Ok(());
                }
                let cells: Vec<&str> = fields.collect();
                let (fixed, values) = cells.split_at(cells.len().min(5));
                let mut row = String::with_capacity(line.len() + 16);
                row.push_str(if first { "[" } else { ",[" });
                first = false;
                row.push_str(fixed.first().copied().unwrap_or("null"));
                row.push(',');
                row.push_str(&x_text);
                for f in fixed.iter().skip(1) {
                    row.push(',');
                    row.push_str(f);
                }
                for c in &columns {
                    row.push(',');
                    row.push_str(c.and_then(|i| values.get(i).copied()).unwrap_or("null"));
                }
                row.push(']');
                out.write_all(row.as_bytes())
            })?;
        }
        Ok(())
    }

    /// Calls `f` with each line of the spool, without its newline.
    fn each_line(&mut self, mut f: impl FnMut(&str) -> std::io::Result<()>) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Memory(v) => each(&v[..], &mut f),
            Sink::File { file, .. } => {
                file.flush()?;
                let inner = file.get_mut();
                inner.rewind()?;
                let result = each(&*inner, &mut f);
                inner.seek(std::io::SeekFrom::End(0))?;
                result
            }
        }
    }
}

fn each(reader: impl Read, f: &mut impl FnMut(&str) -> std::io::Result<()>) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        f(line.trim_end_matches('\n'))?;
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Sink::File { path, .. } = &self.sink {
            let _ = std::fs::remove_file(path);
        }
    }
}
