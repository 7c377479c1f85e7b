//! A trial's architecture in words for reports: a one-line summary of its model (lab 1's MLP
//! from `hidden_layers`, `hidden_width` and `activation`; a model of layers by its kinds of
//! layers and their widths) and its count of trainable parameters.

use crate::DatasetKind;
use crate::grid::HyperParams;
use crate::model::{Layer, ModelSpec, mlp_parameters};

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
}
