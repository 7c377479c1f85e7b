//! A trial's architecture in words for reports: a one-line summary of its model (lab 1's MLP
//! from `hidden_layers`, `hidden_width` and `activation`; a model of layers by its kinds of
//! layers and their widths) and its count of trainable parameters; and the label a report
//! gives each model of an axis ([`model_labels`]): readable, and distinct between distinct
//! models ([`distinct`]).

use crate::DatasetKind;
use crate::grid::HyperParams;
use crate::model::{Layer, Model, ModelSpec, mlp_parameters};

/// What a report says of a trial's model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Architecture {
    /// One line: `MLP 784-256-10, ReLU`, `3 conv 16-32-64, 1 res 128, 2 linear 128-10; bn,
    /// dropout, max pool`.
    pub summary: String,
    /// Trainable parameters (`None` when the model does not fit the dataset).
    pub parameters: Option<u64>,
}

impl Architecture {
    /// The architecture of a trial with hyperparameters `p` on `dataset`.
    pub fn of(p: &HyperParams, dataset: DatasetKind) -> Self {
        match p.model.spec() {
            Ok(ModelSpec::Mlp) => mlp(p, dataset),
            Ok(spec @ ModelSpec::Layers(_)) => Self {
                summary: layers(&spec),
                parameters: spec.infer(dataset).ok().map(|i| i.parameters),
            },
            Err(_) => Self {
                summary: p.model.to_string(),
                parameters: None,
            },
        }
    }

    /// The architecture of `model` alone on `dataset`; `None` for lab 1's MLP, whose layers
    /// come from other hyperparameters (`hidden_layers`, `hidden_width`, `activation`).
    pub fn of_model(model: Model, dataset: DatasetKind) -> Option<Self> {
        match model.spec() {
            Ok(ModelSpec::Mlp) => None,
            Ok(spec @ ModelSpec::Layers(_)) => Some(Self {
                summary: layers(&spec),
                parameters: spec.infer(dataset).ok().map(|i| i.parameters),
            }),
            Err(_) => Some(Self {
                summary: model.to_string(),
                parameters: None,
            }),
        }
    }

    /// The summary and the parameter count in one line: `2 conv 32-64, 1 linear 10; bn, max
    /// pool, 0.29M params` (the summary alone when the count is unknown).
    pub fn label(&self) -> String {
        match self.parameters {
            Some(_) => format!("{}, {} params", self.summary, self.parameters_text()),
            None => self.summary.clone(),
        }
    }

    /// The parameter count, short: `101770`, `1.2M`, `-` when unknown.
    pub fn parameters_text(&self) -> String {
        match self.parameters {
            None => "-".to_owned(),
            Some(n) if n < 100_000 => n.to_string(),
            Some(n) if n < 10_000_000 => format!("{:.2}M", n as f64 / 1e6),
            Some(n) => format!("{:.1}M", n as f64 / 1e6),
        }
    }
}

fn mlp(p: &HyperParams, dataset: DatasetKind) -> Architecture {
    let mut dims = vec![dataset.input_len() as u64];
    dims.extend(std::iter::repeat_n(
        u64::from(p.hidden_width),
        p.hidden_layers as usize,
    ));
    dims.push(dataset.num_classes() as u64);
    let parameters = mlp_parameters(dataset, p.hidden_layers, p.hidden_width);
    let widths: Vec<String> = dims.iter().map(u64::to_string).collect();
    let activation = if p.hidden_layers > 0 {
        format!(", {}", p.activation)
    } else {
        String::new()
    };
    Architecture {
        summary: format!("MLP {}{activation}", widths.join("-")),
        parameters: Some(parameters),
    }
}

/// The labels a report gives `models`, the values of one axis on `dataset`, in order: each
/// model's [`Architecture::label`] (lab 1's MLP by its name, `mlp`), made [`distinct`], so that
/// no two models of the axis read the same in a legend, a table header or a caption.
pub fn model_labels(models: &[Model], dataset: DatasetKind) -> Vec<String> {
    let labels = models
        .iter()
        .map(|&m| Architecture::of_model(m, dataset).map_or_else(|| m.to_string(), |a| a.label()))
        .collect();
    distinct(labels)
}

/// `labels` with those that are equal told apart by a suffix, ` #1`, ` #2`... in order (the
/// others unchanged), so that labels at different positions always differ.
pub fn distinct(mut labels: Vec<String>) -> Vec<String> {
    // Each pass lengthens every label that still has a twin; a suffix can only make a new twin
    // with a label that already ended that way, and at most `len` passes separate them all.
    for _ in 0..labels.len() {
        let mut seen: std::collections::HashMap<String, Vec<usize>> =
            std::collections::HashMap::new();
        for (i, l) in labels.iter().enumerate() {
            seen.entry(l.clone()).or_default().push(i);
        }
        let twins: Vec<Vec<usize>> = seen.into_values().filter(|v| v.len() > 1).collect();
        if twins.is_empty() {
            break;
        }
        for group in twins {
            for (k, i) in group.into_iter().enumerate() {
                labels[i] = format!("{} #{}", labels[i], k + 1);
            }
        }
    }
    labels
}

/// `N kind w1-w2-...` for each kind of weighted layer, then the other kinds present.
fn layers(spec: &ModelSpec) -> String {
    let ModelSpec::Layers(layers) = spec else {
        return spec.to_string();
    };
    let (mut conv, mut res, mut linear) = (Vec::new(), Vec::new(), Vec::new());
    let mut others: Vec<&str> = Vec::new();
    for l in layers {
        let other = match *l {
            Layer::Conv { out, .. } => {
                conv.push(out);
                None
            }
            Layer::Residual { out, .. } => {
                res.push(out);
                None
            }
            Layer::Linear { out } => {
                linear.push(out);
                None
            }
            Layer::BatchNorm => Some("bn"),
            Layer::Dropout { .. } => Some("dropout"),
            Layer::MaxPool { .. } | Layer::GlobalMaxPool => Some("max pool"),
            Layer::AvgPool { .. } | Layer::GlobalAvgPool => Some("avg pool"),
            Layer::Relu | Layer::Tanh | Layer::Sigmoid | Layer::Flatten => None,
        };
        if let Some(o) = other
            && !others.contains(&o)
        {
            others.push(o);
        }
    }
    let weighted: Vec<String> = [("conv", conv), ("res", res), ("linear", linear)]
        .into_iter()
        .filter(|(_, widths)| !widths.is_empty())
        .map(|(kind, widths)| {
            let widths: Vec<String> = widths.iter().map(u64::to_string).collect();
            format!("{} {kind} {}", widths.len(), widths.join("-"))
        })
        .collect();
    let mut text = weighted.join(", ");
    if !others.is_empty() {
        text.push_str("; ");
        text.push_str(&others.join(", "));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;

    fn params(model: &str, layers: u32, width: u32) -> HyperParams {
        let mut p = HyperParams::defaults(0).unwrap();
        p.model = Model::parse(model).unwrap();
        p.hidden_layers = layers;
        p.hidden_width = width;
        p
    }

    #[test]
    fn mlps_and_models_of_layers_are_summarised_with_their_parameters() {
        let a = Architecture::of(&params("mlp", 2, 256), DatasetKind::FashionMnist);
        assert_eq!(a.summary, "MLP 784-256-256-10, ReLU");
        // PyTorch's count for Linear(784,256), Linear(256,256), Linear(256,10).
        assert_eq!(a.parameters, Some(784 * 256 + 256 + 256 * 256 + 256 + 2570));
        assert_eq!(a.parameters_text(), "0.27M");
        let a = Architecture::of(&params("mlp", 0, 256), DatasetKind::Cifar10);
        assert_eq!(a.summary, "MLP 3072-10");
        assert_eq!(a.parameters_text(), "30730");

        let cnn = "conv(16,3,p=1) bn relu maxpool(2) res(32,s=2) dropout(0.3) conv(8,3) \
                   gap bn linear(64) relu linear(10)";
        let a = Architecture::of(&params(cnn, 1, 1), DatasetKind::Cifar10);
        assert_eq!(
            a.summary,
            "2 conv 16-8, 1 res 32, 2 linear 64-10; bn, max pool, dropout, avg pool"
        );
        let spec = Model::parse(cnn).unwrap().spec().unwrap();
        assert_eq!(
            a.parameters,
            Some(spec.infer(DatasetKind::Cifar10).unwrap().parameters)
        );
        // A model that does not fit the dataset still has a summary.
        let a = Architecture::of(&params("conv(4,3) linear(7)", 1, 1), DatasetKind::Cifar10);
        assert_eq!(a.parameters, None);
        assert_eq!(a.parameters_text(), "-");
    }

    /// The lab 2 example's models share their first 40 characters two by two; their labels
    /// differ, and models whose summaries and counts agree (only a dropout rate differs) are
    /// told apart.
    #[test]
    fn model_labels_are_readable_and_distinct() {
        let models: Vec<Model> = [
            "conv(32,3,p=1) bn relu maxpool(2) conv(64,3,p=1) bn relu maxpool(2) gap linear(10)",
            "conv(32,3,p=1) bn relu maxpool(2) conv(64,3,p=1) bn relu maxpool(2) conv(128,3,p=1) \
             bn relu maxpool(2) gap linear(10)",
            "conv(8,3) relu dropout(0.3) flatten linear(10)",
            "conv(8,3) relu dropout(0.5) flatten linear(10)",
            "mlp",
        ]
        .iter()
        .map(|m| Model::parse(m).unwrap())
        .collect();
        let labels = model_labels(&models, DatasetKind::Cifar10);
        // conv 3x3x3x32 + 32, bn 64, conv 3x3x32x64 + 64, bn 128, linear 64x10 + 10.
        let two = 864 + 32 + 64 + 18432 + 64 + 128 + 650;
        // and conv 3x3x64x128 + 128, bn 256, linear 128x10 + 10 instead of 64x10 + 10.
        let three = two - 650 + 73728 + 128 + 256 + 1290;
        assert_eq!(
            labels[0],
            format!("2 conv 32-64, 1 linear 10; bn, max pool, avg pool, {two} params")
        );
        assert_eq!(
            labels[1],
            format!("3 conv 32-64-128, 1 linear 10; bn, max pool, avg pool, {three} params")
        );
        assert_eq!(labels[2], "1 conv 8, 1 linear 10; dropout, 72234 params #1");
        assert_eq!(labels[3], "1 conv 8, 1 linear 10; dropout, 72234 params #2");
        assert_eq!(labels[4], "mlp");
    }

    #[test]
    fn distinct_tells_twins_apart_and_keeps_the_others() {
        let v = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
        assert_eq!(distinct(v(&["a", "b", "a"])), v(&["a #1", "b", "a #2"]));
        // A suffix that meets a label already spelled that way is told apart again.
        let d = distinct(v(&["a", "a", "a #1"]));
        let unique: std::collections::HashSet<&String> = d.iter().collect();
        assert_eq!(unique.len(), 3, "{d:?}");
        assert_eq!(distinct(v(&[])), v(&[]));
    }
}
