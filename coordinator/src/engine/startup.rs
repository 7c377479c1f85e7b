//! What the coordinator makes sure of in its folders before it serves: it alone uses them (the
//! locks), it can write in each of them, and what an earlier run left there is whole: the final
//! weights of trials an edited grid replaced are not overwritten, succeeded trials whose
//! weights are missing are trained again, and trials an edited grid asks more epochs of
//! continue the recorded ones (`lineage`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use sweep_common::TrialId;
use tracing::{info, warn};

use crate::lineage::{self, Verdict};
use crate::{Error, Options, artifacts, lock, private, state, store};

/// Creates the output folder and the state directory (a new state directory `0700` from the
/// start, see [`private`]) and takes their locks (one lock when both are one folder), before
/// anything else is written in them: a second coordinator on either stops here.
pub(crate) fn lock_folders(options: &Options) -> Result<Vec<lock::DirLock>, Error> {
    let state_dir = options.state_dir();
    let mut locks: Vec<lock::DirLock> = Vec::new();
    for (dir, what) in [
        (&options.out_dir, "output folder"),
        (&state_dir, "state directory"),
    ] {
        let created = if dir == &state_dir && !dir.exists() {
            private::dir(dir).map(drop)
        } else {
            std::fs::create_dir_all(dir)
        };
        created.map_err(|source| Error::Io {
            action: "cannot create the folder",
            path: dir.display().to_string(),
            source,
        })?;
        let canonical = std::fs::canonicalize(dir).ok();
        let held = locks
            .iter()
            .any(|l| canonical.is_some() && std::fs::canonicalize(l.dir()).ok() == canonical);
        if !held {
            locks.push(lock::DirLock::acquire(dir, what)?);
        }
    }
    Ok(locks)
}

/// Moves aside the final weights of recorded trials no longer in the grid that a trial of the
/// grid would overwrite (an edited grid whose trials keep their names: `models/<name>` is
/// theirs now): `models/<name>.<short id>.safetensors`, recorded in the database. Nothing
/// trained is lost, and no two trials point at one file.
/// Moves the final weights `file` of the trial `id` aside in `out`, to `NAME.SHORTID.safetensors`,
/// and returns that name.
pub(crate) fn move_weights_aside(out: &Path, file: &str, id: &TrialId) -> Result<String, Error> {
    let stem = file.strip_suffix(".safetensors").unwrap_or(file);
    let aside = format!("{stem}.{}.safetensors", id.short());
    std::fs::rename(out.join(file), out.join(&aside)).map_err(|source| Error::NotWritable {
        what: "folder of final weights",
        path: out.join(file).display().to_string(),
        source,
    })?;
    Ok(aside)
}

pub(crate) fn keep_weights_of_removed_trials(
    store: &mut store::Store,
    removed: &HashMap<TrialId, state::Trial>,
    grid: &[state::Trial],
    out: &Path,
) -> Result<(), Error> {
    if removed.values().all(|t| t.state.weights().is_none()) {
        return Ok(());
    }
    // The files the grid's trials write, but for those that already wrote theirs.
    let claimed: HashSet<String> = grid
        .iter()
        .filter(|t| t.state.weights().is_none())
        .map(|t| artifacts::weights_file(&t.spec.name))
        .collect();
    let mut ids: Vec<&TrialId> = removed.keys().collect();
    ids.sort_unstable();
    for id in ids {
        let Some(file) = removed[id].state.weights() else {
            continue;
        };
        if !claimed.contains(file) || !out.join(file).is_file() {
            continue;
        }
        let aside = move_weights_aside(out, file, id)?;
        store.move_weights(*id, &aside)?;
        warn!(
            trial = %removed[id].spec.name,
            id = %id.short(),
            from = %file,
            to = %aside,
            "a trial no longer in the grid had the final weights file a trial of the grid writes: moved aside"
        );
    }
    Ok(())
}

/// Puts back in the queue every succeeded trial whose final weights are not in the output folder
/// (deleted, or never stored because the storage failed): a rerun repairs what is missing. The
/// state owner commits the change with its first batch.
pub(crate) fn retrain_missing_weights(s: &mut state::Scheduler, out: &Path) {
    let missing: Vec<(TrialId, String, String)> = s
        .trials()
        .iter()
        .filter(|t| matches!(t.state, state::TrialState::Succeeded { .. }))
        .filter_map(|t| {
            let why = match t.state.weights() {
                Some(file) if out.join(file).is_file() => return None,
                Some(file) => {
                    format!("its final weights {file} were missing when the coordinator started")
                }
                None => "its final weights were never stored".to_owned(),
            };
            Some((t.spec.id, t.spec.name.clone(), why))
        })
        .collect();
    if missing.is_empty() {
        return;
    }
    let shown: Vec<&str> = missing.iter().take(10).map(|m| m.1.as_str()).collect();
    warn!(
        count = missing.len(),
        trials = %shown.join(", "),
        "succeeded trials without their final weights in the output folder: trained again"
    );
    for (id, _, why) in missing {
        s.retrain_missing_weights(id, why);
    }
}

/// Lets the grid's trials not recorded by id (`unrecorded`, indices into `trials`) that ask
/// for more epochs than a recorded trial of their lineage continue it (`lineage`): the recorded
/// trial leaves `loaded.trials` and, grown, takes the new trial's place (an archived curve read
/// back from the database); the decisions naming it name the new trial. Logs what it adopted
/// and, one line per trial (at most 10), the trials of a recorded lineage trained afresh and
/// why. Returns the rows to rename, for [`store::Store::record_grid_adopting`].
pub(crate) fn adopt_grown(
    store: &store::Store,
    trials: &mut [state::Trial],
    unrecorded: &[usize],
    loaded: &mut store::Loaded,
    out: &Path,
) -> Result<Vec<store::Adopted>, Error> {
    if unrecorded.is_empty() || loaded.trials.is_empty() {
        return Ok(Vec::new());
    }
    let lineages = lineage::Lineages::of(loaded.trials.values());
    let mut adopted = Vec::new();
    let mut afresh = Vec::new();
    let mut reader = None;
    for &i in unrecorded {
        let new = &trials[i].spec;
        let from = match lineages.verdict(new, &loaded.trials) {
            None => continue,
            Some(Verdict::Afresh { from, why }) => {
                afresh.push((new.name.clone(), from, why));
                continue;
            }
            Some(Verdict::Adopt { from }) => from,
        };
        let Some(mut old) = loaded.trials.remove(&from) else {
            continue;
        };
        if old.is_archived() {
            let r = match &reader {
                Some(r) => r,
                None => reader.insert(store::Reader::open(store.path())?),
            };
            old.epochs = r.curve(from)?.into();
        }
        // Nothing computed is lost: the shorter run's final weights stay, beside the file the
        // longer run writes.
        if let Some(file) = old.state.weights()
            && out.join(file).is_file()
        {
            let aside = move_weights_aside(out, file, &from)?;
            info!(
                trial = %new.name,
                from = %file,
                to = %aside,
                "a trial asking for more epochs continues: its shorter run's final weights moved aside"
            );
        }
        let (t, kept) = lineage::grow(old, new.clone());
        adopted.push(store::Adopted {
            from,
            to: t.spec.id,
            kept,
        });
        trials[i] = t;
    }
    let renamed: HashMap<TrialId, TrialId> = adopted.iter().map(|a| (a.from, a.to)).collect();
    for d in &mut loaded.decisions {
        if let Some(&to) = renamed.get(&d.config) {
            d.config = to;
        }
    }
    log_growth(trials, &adopted, &afresh);
    Ok(adopted)
}

fn log_growth(
    trials: &[state::Trial],
    adopted: &[store::Adopted],
    afresh: &[(String, TrialId, String)],
) {
    if !adopted.is_empty() {
        let names: HashMap<TrialId, &str> = trials
            .iter()
            .map(|t| (t.spec.id, t.spec.name.as_str()))
            .collect();
        let shown: Vec<&str> = adopted
            .iter()
            .take(10)
            .filter_map(|a| names.get(&a.to).copied())
            .collect();
        info!(
            count = adopted.len(),
            trials = %shown.join(", "),
            "the grid file asks these trials for more epochs: they continue the recorded ones from their checkpoints (stopped ones stay stopped until promoted)"
        );
    }
    for (name, from, why) in afresh.iter().take(10) {
        warn!(
            trial = %name,
            recorded = %from,
            reason = %why,
            "trial of a recorded lineage with other epochs is trained afresh"
        );
    }
    if afresh.len() > 10 {
        warn!(
            count = afresh.len() - 10,
            "more trials of recorded lineages with other epochs are trained afresh"
        );
    }
}

/// Checks that every folder the coordinator writes in can be written (a file is made, written,
/// synced and removed in each), before it serves: a read-only mount, a full disk or a file
/// where a folder should be stops it here (exit 2), not after the sweep has trained.
pub(crate) fn check_writable(options: &Options) -> Result<(), Error> {
    use std::io::Write as _;
    let state = options.state_dir();
    let out = &options.out_dir;
    for (dir, what) in [
        (out.clone(), "output folder"),
        (out.join(artifacts::MODELS), "folder of final weights"),
        (out.join("figures"), "folder of figures"),
        (state.clone(), "state directory"),
        (artifacts::checkpoints_dir(&state), "folder of checkpoints"),
    ] {
        let not_writable = |source| Error::NotWritable {
            what,
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(not_writable)?;
        let mut probe = tempfile::Builder::new()
            .prefix(".sweep-write-check-")
            .tempfile_in(&dir)
            .map_err(not_writable)?;
        probe
            .write_all(b"sweep")
            .and_then(|()| probe.as_file().sync_all())
            .map_err(not_writable)?;
        probe.close().map_err(not_writable)?;
    }
    Ok(())
}
