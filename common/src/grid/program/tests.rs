//! Program experiments in grid files: expansion, ids, and located errors.

use super::super::Grid;
use crate::program::ProgramValue;

const GRID: &str = r#"[sweep]
name = "s"
seed = 7

[[experiment]]
name = "prog"
dataset = "fashion-mnist"
program = ["python3", "train.py", "--lr", "{lr}", "--opt={solver}", "--epochs", "{epochs}"]
workdir = "examples/program"
env = { OMP_NUM_THREADS = "1" }

[experiment.fixed]
epochs = 2

[experiment.params]
lr = { values = [0.1, 0.01], min = 0.0, max = 1.0 }
solver = ["adam", "sgd"]
width = 64
batch_norm = true
"#;

fn parse(text: &str) -> Result<Grid, String> {
    Grid::parse(text, "g.toml").map_err(|e| e.to_string())
}

#[test]
fn a_program_experiment_expands_its_own_axes() {
    let grid = parse(GRID).unwrap();
    let trials: Vec<_> = grid.trials().collect();
    assert_eq!(trials.len(), 4);
    let names: Vec<&str> = trials.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "prog_lr-0.1_solver-adam",
            "prog_lr-0.1_solver-sgd",
            "prog_lr-0.01_solver-adam",
            "prog_lr-0.01_solver-sgd"
        ]
    );
    let p = trials[1].program.as_ref().unwrap();
    assert_eq!(
        p.argv,
        [
            "python3",
            "train.py",
            "--lr",
            "0.1",
            "--opt=sgd",
            "--epochs",
            "2"
        ]
    );
    assert_eq!(p.workdir.as_deref(), Some("examples/program"));
    assert_eq!(p.env["OMP_NUM_THREADS"], "1");
    assert_eq!(p.params["width"], ProgramValue::Int(64));
    assert_eq!(p.params["batch_norm"], ProgramValue::Bool(true));
    assert_eq!(p.params["lr"], ProgramValue::Float(0.1));
    assert_eq!(trials[1].params.epochs, 2);
    // Ids are content ids: each trial's matches its content, and all differ.
    let mut ids: Vec<_> = trials.iter().map(|t| t.id).collect();
    for t in &trials {
        assert_eq!(t.content_id(), t.id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
}

#[test]
fn what_runs_is_part_of_the_id_but_the_name_is_not() {
    let base = parse(GRID).unwrap();
    let id = |g: &Grid| g.trials().next().unwrap().id;
    let other_env = parse(&GRID.replace("\"1\" }", "\"2\" }")).unwrap();
    assert_ne!(id(&base), id(&other_env));
    let other_argv = parse(&GRID.replace("\"train.py\"", "\"train2.py\"")).unwrap();
    assert_ne!(id(&base), id(&other_argv));
    let renamed = GRID.replace(
        "workdir =",
        "trial_name = \"{experiment}-{lr}-{solver}\"\nworkdir =",
    );
    let renamed = parse(&renamed).unwrap();
    assert_eq!(id(&base), id(&renamed));
    assert_eq!(renamed.trials().next().unwrap().name, "prog-0.1-adam");
    // The same trial without a program is another trial.
    let native = "[sweep]\nname = \"s\"\nseed = 7\n[[experiment]]\nname = \"prog\"\ndataset = \"fashion-mnist\"\n[experiment.fixed]\nepochs = 2\n";
    assert_ne!(id(&base), id(&parse(native).unwrap()));
}

#[test]
fn bad_program_keys_are_located_and_named() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "\"{lr}\"",
            "\"{lrr}\"",
            "g.toml:8:44: experiment[0].program[3]: unknown placeholder {lrr} (did you mean {lr}?)",
        ),
        (
            "\"{lr}\"",
            "\"{lr\"",
            "g.toml:8:44: experiment[0].program[3]: unclosed '{'",
        ),
        (
            "min = 0.0, max = 1.0",
            "min = 0.0, max = 0.05",
            "g.toml:16:18: experiment[0].params.lr[0]: must be in [0, 0.05], got 0.1",
        ),
        (
            "[\"adam\", \"sgd\"]",
            "[\"adam\", 2]",
            "experiment[0].params.solver[1]: 2 is an integer, but the first value is a string",
        ),
        (
            "[\"adam\", \"sgd\"]",
            "[\"adam\", \"adam\"]",
            "experiment[0].params.solver[1]: duplicate value adam (already at index 0)",
        ),
        (
            "width = 64",
            "epochs = 64",
            "experiment[0].params.epochs: epochs is a built-in hyperparameter",
        ),
        (
            "OMP_NUM_THREADS",
            "SWEEP_WORKER_TOKEN",
            "experiment[0].env.SWEEP_WORKER_TOKEN: invalid environment variable name",
        ),
        (
            "program = [\"python3\", \"train.py\", \"--lr\", \"{lr}\", \"--opt={solver}\", \"--epochs\", \"{epochs}\"]",
            "program = []",
            "g.toml:8:11: experiment[0].program: program is the program and its arguments",
        ),
        (
            "program = [\"python3\", \"train.py\", \"--lr\", \"{lr}\", \"--opt={solver}\", \"--epochs\", \"{epochs}\"]\n",
            "",
            "g.toml:8:11: experiment[0].workdir: workdir belongs to a program experiment",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(GRID.contains(from), "{from}");
        let err = parse(&GRID.replacen(from, to, 1)).unwrap_err();
        assert!(err.contains(expected), "{to}: {err}\nexpected: {expected}");
    }
}

#[test]
fn double_braces_are_literal_braces() {
    let text = GRID.replace(
        "\"--epochs\", \"{epochs}\"]",
        "\"{{\\\"lr\\\": {lr}}}\", \"a}b\"]",
    );
    let grid = parse(&text).unwrap();
    let argv = &grid.trials().next().unwrap().program.as_ref().unwrap().argv;
    assert_eq!(argv[argv.len() - 2..], ["{\"lr\": 0.1}", "a}b"]);
}

#[test]
fn program_axes_count_against_max_trials() {
    let text = GRID.replace("seed = 7", "seed = 7\nmax_trials = 3");
    let err = parse(&text).unwrap_err();
    assert!(err.contains("4 trials (4 program cells"), "{err}");
    assert!(err.contains("max_trials = 3"), "{err}");
}

#[test]
fn native_experiments_carry_no_program() {
    let grid =
        parse("[sweep]\nname = \"s\"\n[[experiment]]\nname = \"e\"\ndataset = \"cifar10\"\n")
            .unwrap();
    assert!(grid.trials().all(|t| t.program.is_none()));
}
