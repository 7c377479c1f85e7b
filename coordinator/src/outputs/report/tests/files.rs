//! A whole report written from the stored fixture `tests/fixtures/results_small.json`
//! (tables' numbers, CSV columns, one heatmap's cell counts, well-formed self-contained HTML),
//! and the heatmap figure on its own.

use super::cifar;
use crate::report::doc::{self, Block};
use crate::report::figures::{ConfusionPlot, Panel, Plot};
use crate::report::write;
use sweep_common::ConfusionMatrix as Confusion;
use sweep_common::results::Results;

const FIXTURE: &str = include_str!("../../../../tests/fixtures/results_small.json");

fn svg_texts(svg: &str) -> Vec<String> {
    let tree = roxmltree::Document::parse(svg).expect("well-formed svg");
    tree.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_owned())
        .collect()
}

#[test]
fn heatmap_annotates_every_cell_and_names_every_class() {
    let train = Confusion {
        classes: 10,
        counts: (0..100)
            .map(|i| if i % 11 == 0 { 3000 + i } else { i })
            .collect(),
    };
    let test = Confusion {
        classes: 10,
        counts: (0..100).map(|i| 1000 + i).collect(),
    };
    let plot = Plot::Confusion(ConfusionPlot {
        title: "Confusion Matrices for Training & Test Data for T".into(),
        classes: cifar().iter().map(|s| (*s).to_owned()).collect(),
        panels: vec![
            Panel {
                title: "Train Acc = 56.92 %".into(),
                matrix: Some(train.clone()),
            },
            Panel {
                title: "Test Acc = 49.30 %".into(),
                matrix: Some(test.clone()),
            },
        ],
    });
    let texts = svg_texts(&plot.svg().expect("svg"));
    for label in [
        "Train Acc = 56.92 %",
        "Test Acc = 49.30 %",
        "Predicted Values",
        "True Values",
    ] {
        assert!(texts.iter().any(|t| t == label), "{label} missing");
    }
    assert!(
        texts
            .iter()
            .any(|t| t == "Confusion Matrices for Training & Test Data for T")
    );
    for class in cifar() {
        // Once per axis, per panel.
        assert_eq!(texts.iter().filter(|t| *t == class).count(), 4, "{class}");
    }
    let numbers: Vec<u64> = texts.iter().filter_map(|t| t.parse().ok()).collect();
    let expected: Vec<u64> = train.counts.iter().chain(&test.counts).copied().collect();
    assert_eq!(numbers, expected, "every count, row-major, train then test");
    let png = plot.png().expect("png");
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let reader = decoder.read_info().expect("a png");
    let (w, h) = plot.size().expect("size");
    assert_eq!((reader.info().width, reader.info().height), (w, h));
}

#[test]
fn report_from_the_stored_fixture() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("results.json"), FIXTURE).expect("write fixture");
    let paths = write(dir.path()).expect("report written");
    for p in paths.all() {
        assert!(p.is_file(), "{} missing", p.display());
    }
    // Two experiments: 2 curve figures each, and one confusion figure per succeeded trial.
    assert_eq!(paths.figures.len(), 2 * (4 + 4 + 3));

    // Tables' numbers.
    let md = std::fs::read_to_string(&paths.markdown).expect("report.md");
    assert!(md.contains(
        "| Hidden layers / Activation | ReLU | Tanh |\n|---|---:|---:|\n| 1 | 45.33 | 40.67 |\n| 2 | 47.33 | 36.67 |\n"
    ), "{md}");
    assert!(md.contains("| 0.2 | 83.53 ± 0.94 (n=2) |"), "{md}");
    assert!(md.contains("| 1 | 84.87 (n=1) |"), "{md}");
    assert!(
        md.contains("- cat -> dog: 155\n- truck -> automobile: 115\n"),
        "{md}"
    );
    assert!(md.contains("Most confused (test split): cat -> dog: 38; truck -> automobile: 28;"));
    assert!(md.contains("non_finite_loss: loss became nan at epoch 2"));
    assert!(md.contains("![Accuracy learning curves for different training split ratios](figures/p2-test-accuracy.png)"));

    // CSV columns and a row.
    let results_csv = std::fs::read_to_string(&paths.results_csv).expect("results.csv");
    let mut lines = results_csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "id,experiment,name,dataset,activation,hidden_layers,hidden_width,learning_rate,\
             batch_size,epochs,train_fraction,seed,model,optimizer,momentum,weight_decay,\
             lr_schedule,lr_schedule_unit,lr_warmup,lr_step_size,lr_gamma,label_smoothing,\
             clip_grad_norm,random_crop,random_flip,normalize,status,\
             attempts,worker,train_accuracy,\
             test_accuracy,gap,wall_seconds,train_seconds,epochs_completed,failure"
        )
    );
    assert_eq!(
        lines.next(),
        Some(
            "00000000-0000-5000-8000-000000000001,p1,P1_HiddenL_1_Activation_ReLU,cifar10,relu,\
             1,1024,0.001,128,3,1.0,0,mlp,adam,0.9,0.0,constant,epoch,0,10,0.1,0.0,0.0,0,0.0,none,\
             succeeded,1,w1 (11111111-1111-4111-8111-111111111111),54,\
             45.333333333333336,8.666666666666664,13.5,12.25,3,"
        )
    );
    assert_eq!(results_csv.lines().count(), 1 + 9);
    let epochs_csv = std::fs::read_to_string(&paths.epochs_csv).expect("epochs.csv");
    assert_eq!(
        epochs_csv.lines().next(),
        Some("id,experiment,name,epoch,train_loss,train_accuracy,test_accuracy,seconds,status")
    );
    assert_eq!(epochs_csv.lines().count(), 1 + 7 * 3);

    // One heatmap's cells: the test panel's row "cat" of the first trial.
    let svg = std::fs::read_to_string(
        dir.path()
            .join("figures/p1-confusion-P1_HiddenL_1_Activation_ReLU.svg"),
    )
    .expect("svg");
    let numbers: Vec<u64> = svg_texts(&svg)
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 200);
    assert_eq!(&numbers[130..140], [8, 8, 8, 43, 13, 38, 8, 8, 8, 8]);

    // HTML: well-formed, self-contained, every figure inline.
    let html = std::fs::read_to_string(&paths.html).expect("report.html");
    let tree = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("report.html is well-formed");
    assert_eq!(tree.root_element().tag_name().name(), "html");
    let svgs = tree.descendants().filter(|n| n.has_tag_name("svg")).count();
    assert_eq!(svgs, 4 + 4 + 3);
    for forbidden in ["src=\"http", "<link", "<script src", "url(http", "@import"] {
        assert!(!html.contains(forbidden), "{forbidden} in report.html");
    }
    // The comparison views: their data inline, every script inline.
    let scripts: Vec<_> = tree
        .descendants()
        .filter(|n| n.has_tag_name("script"))
        .collect();
    assert!(scripts.iter().all(|s| s.attribute("src").is_none()));
    let data = scripts
        .iter()
        .find(|s| s.attribute("id") == Some("sweep-compare-data"))
        .and_then(|s| s.text())
        .expect("the comparison data");
    let data: serde_json::Value = serde_json::from_str(data).expect("its JSON");
    assert_eq!(data["trials"].as_array().map(Vec::len), Some(9));
    assert!(
        tree.descendants()
            .any(|n| n.attribute("id") == Some("sweep-compare"))
    );
    let tables = tree
        .descendants()
        .filter(|n| n.has_tag_name("table"))
        .count();
    assert_eq!(
        tables,
        3 + 1 + 1 + 1 + 1 + 1,
        "p1: 3 pivots + importance + trials; p2: configurations + importance + trials"
    );

    // PNGs are PNGs.
    for p in paths
        .figures
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
    {
        let bytes = std::fs::read(p).expect("png");
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", p.display());
    }

    // Regenerating gives the same files.
    let again = write(dir.path()).expect("again");
    assert_eq!(again, paths);
    assert_eq!(std::fs::read_to_string(&paths.markdown).expect("md"), md);
}

#[test]
fn document_lists_every_figure_it_references() {
    let r: Results<'static> = serde_json::from_str(FIXTURE).expect("fixture parses");
    let d = doc::build(&r);
    let referenced: Vec<&String> = d
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Figure { stem, .. } => Some(stem),
            _ => None,
        })
        .collect();
    let drawn: Vec<&String> = d.figures.iter().map(|(s, _)| s).collect();
    assert_eq!(referenced, drawn);
    let mut unique = drawn.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), drawn.len());
}
