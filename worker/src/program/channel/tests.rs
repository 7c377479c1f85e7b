//! The channel's requests, checks and socket, without a program.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::*;

#[derive(Default)]
struct Seen {
    epochs: Vec<EpochMetrics>,
    checkpoints: Vec<(u32, Vec<u8>)>,
}

impl Progress for Seen {
    fn epoch(&mut self, m: &EpochMetrics) {
        self.epochs.push(m.clone());
    }
    fn checkpoint(&mut self, epoch: u32, bytes: Vec<u8>) {
        self.checkpoints.push((epoch, bytes));
    }
}

fn reports(dir: &Path, resumed_from: u32) -> Reports {
    Reports {
        resumed_from,
        epochs: 3,
        classes: 2,
        checkpoint_dir: dir.to_owned(),
        done: (1..=resumed_from)
            .map(|epoch| EpochMetrics {
                epoch,
                train_loss: 1.0,
                train_accuracy: 50.0,
                test_accuracy: 50.0,
                seconds: 1.0,
                scalars: Default::default(),
            })
            .collect(),
        confusion: None,
        reported: false,
    }
}

fn request(line: &str) -> Request {
    parse(line.as_bytes()).unwrap()
}

#[test]
fn the_client_requests_parse() {
    assert_eq!(request(r#"{"op": "should_stop"}"#), Request::ShouldStop);
    assert_eq!(
        request(r#"{"op": "checkpoint", "epoch": 2}"#),
        Request::Checkpoint { epoch: 2 }
    );
    let r = request(
        r#"{"op": "report", "epoch": 1, "test_accuracy": 81.5, "train_loss": 0.4, "metrics": {"f1": 0.7}, "confusion": [[3, 1], [0, 4]]}"#,
    );
    let Request::Report {
        epoch,
        test_accuracy,
        train_accuracy,
        metrics,
        confusion,
        ..
    } = r
    else {
        panic!("{r:?}");
    };
    assert_eq!((epoch, test_accuracy, train_accuracy), (1, 81.5, 0.0));
    assert_eq!(metrics["f1"], 0.7);
    assert_eq!(confusion, Some(vec![vec![3, 1], vec![0, 4]]));
}

#[test]
fn bad_requests_are_errors_that_name_the_problem() {
    for (line, says) in [
        ("{\"op\": \"report\"", "EOF"),
        ("{\"op\": \"fly\"}", "unknown variant `fly`"),
        (
            "{\"op\": \"report\", \"epoch\": 1}",
            "missing field `test_accuracy`",
        ),
        (
            "{\"op\": \"report\", \"epoch\": 1, \"test_acuracy\": 3}",
            "unknown field `test_acuracy`",
        ),
        ("{\"op\": \"checkpoint\", \"epoch\": -1}", "invalid value"),
        ("[1, 2]", "not one the client sends"),
    ] {
        let e = parse(line.as_bytes()).unwrap_err();
        assert!(e.contains(says), "{line}: {e}");
    }
    assert!(parse(&[0xff, 0xfe]).unwrap_err().contains("not UTF-8"));
}

#[test]
fn epochs_are_reported_in_order_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = reports(dir.path(), 0);
    let mut seen = Seen::default();
    let report = |epoch: u32, acc: f64| Request::Report {
        epoch,
        test_accuracy: acc,
        train_accuracy: 0.0,
        train_loss: 0.5,
        seconds: 1.0,
        metrics: BTreeMap::new(),
        confusion: None,
    };
    let e = r.handle(report(2, 50.0), &mut seen).unwrap_err();
    assert!(e.contains("the next epoch is 1"), "{e}");
    r.handle(report(1, 50.0), &mut seen).unwrap();
    let e = r.handle(report(1, 50.0), &mut seen).unwrap_err();
    assert!(e.contains("the next epoch is 2"), "{e}");
    let e = r.handle(report(2, 150.0), &mut seen).unwrap_err();
    assert!(e.contains("test_accuracy 150"), "{e}");
    let mut nan = report(2, 60.0);
    if let Request::Report { metrics, .. } = &mut nan {
        metrics.insert("f1".into(), f64::INFINITY);
    }
    let e = r.handle(nan, &mut seen).unwrap_err();
    assert!(e.contains(r#"scalar "f1" is inf"#), "{e}");
    let mut reserved = report(2, 60.0);
    if let Request::Report { metrics, .. } = &mut reserved {
        metrics.insert("seconds".into(), 1.0);
    }
    let e = r.handle(reserved, &mut seen).unwrap_err();
    assert!(e.contains("an epoch's own field"), "{e}");
    let mut more = report(2, 60.0);
    if let Request::Report { metrics, .. } = &mut more {
        metrics.insert("val_loss".into(), 0.3);
    }
    r.handle(more, &mut seen).unwrap();
    assert_eq!(seen.epochs[1].scalars.get("val_loss"), Some(0.3), "carried");
    r.handle(report(3, 70.0), &mut seen).unwrap();
    let e = r.handle(report(4, 70.0), &mut seen).unwrap_err();
    assert!(e.contains("of 1..=3"), "{e}");
    let accuracies: Vec<f64> = seen.epochs.iter().map(|m| m.test_accuracy).collect();
    assert_eq!(accuracies, [50.0, 60.0, 70.0]);
    assert_eq!(r.done, seen.epochs);
}

#[test]
fn a_confusion_matrix_must_have_the_datasets_classes() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = reports(dir.path(), 0);
    let mut seen = Seen::default();
    let with = |rows: Vec<Vec<u64>>| Request::Report {
        epoch: 1,
        test_accuracy: 50.0,
        train_accuracy: 0.0,
        train_loss: 0.5,
        seconds: 1.0,
        metrics: BTreeMap::new(),
        confusion: Some(rows),
    };
    let e = r.handle(with(vec![vec![1, 2, 3]]), &mut seen).unwrap_err();
    assert!(e.contains("2 rows of 2 counts"), "{e}");
    r.handle(with(vec![vec![1, 2], vec![3, 4]]), &mut seen)
        .unwrap();
    assert_eq!(r.confusion.unwrap().counts, [1, 2, 3, 4]);
}

#[test]
fn a_checkpoint_packs_the_folder_with_the_epochs_so_far() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.pt"), b"weights").unwrap();
    let mut r = reports(dir.path(), 1);
    let mut seen = Seen::default();
    let e = r
        .handle(Request::Checkpoint { epoch: 1 }, &mut seen)
        .unwrap_err();
    assert!(e.contains("follows the report of its epoch"), "{e}");
    let report = Request::Report {
        epoch: 2,
        test_accuracy: 60.0,
        train_accuracy: 0.0,
        train_loss: 0.5,
        seconds: 1.0,
        metrics: BTreeMap::new(),
        confusion: None,
    };
    r.handle(report, &mut seen).unwrap();
    r.handle(Request::Checkpoint { epoch: 2 }, &mut seen)
        .unwrap();
    let (epoch, archive) = &seen.checkpoints[0];
    assert_eq!(*epoch, 2);
    let to = tempfile::tempdir().unwrap();
    let meta = pack::unpack(archive, to.path()).unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
    assert_eq!(meta["epochs"].as_array().unwrap().len(), 2);
    assert_eq!(
        std::fs::read(to.path().join("model.pt")).unwrap(),
        b"weights"
    );
}

/// The socket end to end: a request line gets its answer line; a refused one closes the
/// connection; an over-long line is refused without being held whole.
#[test]
fn the_socket_answers_each_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let mut listener = Listener::bind(&path).unwrap();
    let client = std::thread::spawn(move || {
        let stream = UnixStream::connect(&path).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut ask = |line: &[u8]| {
            writer.write_all(line).unwrap();
            writer.write_all(b"\n").unwrap();
            let mut answer = String::new();
            reader.read_line(&mut answer).unwrap();
            answer
        };
        let first = ask(br#"{"op": "should_stop"}"#);
        let second = ask(b"{nonsense");
        let mut rest = String::new();
        let closed = reader.read_line(&mut rest).unwrap() == 0;
        let long = UnixStream::connect(dir.path().join("s.sock")).unwrap();
        let mut long_reader = BufReader::new(long.try_clone().unwrap());
        let mut long_writer = long;
        // Written on a thread: the worker stops reading after MAX_REQUEST + 1 bytes.
        let writing = std::thread::spawn(move || {
            let _ = long_writer.write_all(&vec![b'x'; MAX_REQUEST * 2]);
        });
        let mut third = String::new();
        long_reader.read_line(&mut third).unwrap();
        drop(long_reader);
        let _ = writing.join();
        (first, second, closed, third)
    });
    let mut answers = vec![Ok(true), Err("refused".to_owned())];
    let mut requests = Vec::new();
    while requests.len() < 3 {
        if let Some(call) = listener.next(Duration::from_millis(20)) {
            requests.push(call.request.clone());
            let answer = if answers.is_empty() {
                Err("too long".into())
            } else {
                answers.remove(0)
            };
            call.answer(answer);
        }
    }
    let (first, second, closed, third) = client.join().unwrap();
    assert_eq!(requests[0], Ok(Request::ShouldStop));
    assert!(
        requests[1]
            .as_ref()
            .unwrap_err()
            .contains("not one the client sends")
    );
    assert!(requests[2].as_ref().unwrap_err().contains("longer than"));
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(json(&first), serde_json::json!({"ok": true, "stop": true}));
    assert_eq!(
        json(&second),
        serde_json::json!({"ok": false, "error": "refused"})
    );
    assert!(closed, "a refused request ends its connection");
    assert!(third.contains("too long"), "{third}");
}
