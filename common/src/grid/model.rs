//! The `model` hyperparameter checked against its experiment's dataset when the grid is loaded:
//! a model whose layers do not fit the dataset's images (or do not end in one value per class)
//! is refused at the value's line and column, with the shapes (`common::model`).

use std::ops::Range;

use super::check::Checker;
use super::{GridError, Value};
use crate::dataset::DatasetKind;
use crate::model::{Model, ModelSpec};

impl Checker<'_> {
    /// Checks that `value`, when it is a model of layers, can be built for `dataset`; any other
    /// value passes.
    pub(super) fn model_fits(
        &self,
        value: Value,
        dataset: DatasetKind,
        span: &Range<usize>,
        key: &str,
    ) -> Result<(), GridError> {
        let Value::Text(text) = value else {
            return Ok(());
        };
        let spec = Model(text)
            .spec()
            .map_err(|message| self.err(span, key, message))?;
        if spec == ModelSpec::Mlp {
            return Ok(());
        }
        let [c, h, w] = dataset.image_shape();
        spec.infer(dataset).map(|_| ()).map_err(|why| {
            self.err(
                span,
                key,
                format!("model {text:?} cannot be built for {dataset} ({c}x{h}x{w} images): {why}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::grid::{Grid, Param, Value};
    use crate::model::Model;

    const HEAD: &str =
        "[sweep]\nname = \"s\"\n[[experiment]]\nname = \"e\"\ndataset = \"fashion-mnist\"\n";

    #[test]
    fn a_model_is_an_axis_in_its_canonical_spelling() {
        let text = format!(
            "{HEAD}trial_name = \"t{{seed}}_{{model}}\"\n[experiment.grid]\nmodel = [\"mlp\", \
             \"conv(8, 3, p=1)  bn relu maxpool(2) flatten dropout(0.5) linear(10)\"]\n"
        );
        let g = Grid::parse(&text, "g.toml").unwrap();
        let e = &g.experiments[0];
        assert_eq!(e.axes[0].param, Param::Model);
        assert_eq!(
            e.axes[0].values,
            [
                "mlp",
                "conv(8,3,p=1) bn relu maxpool(2) flatten dropout(0.5) linear(10)"
            ]
        );
        // The default names nothing: an MLP trial keeps the id it had before models existed.
        let mlp = Grid::parse(HEAD, "g.toml").unwrap();
        assert_eq!(e.trials[0].id, mlp.experiments[0].trials[0].id);
        assert_eq!(e.trials[0].params.model, Model::MLP);
        assert_ne!(e.trials[1].id, e.trials[0].id);
        assert!(
            e.trials[1]
                .params
                .get(Param::Model)
                .display()
                .starts_with("conv(8,3,p=1)")
        );
        // The canonical text names the spec, quoted.
        let canonical = crate::trial::TrialSpec::canonical(
            "e",
            e.dataset,
            &e.trials[1].params,
            &e.trials[1].split,
        );
        assert!(
            canonical.ends_with(
                "|model=\"conv(8,3,p=1) bn relu maxpool(2) flatten dropout(0.5) linear(10)\"\
                 |split_ratio=0.7|split_seed=0"
            ),
            "{canonical}"
        );
        // A spelling of the same model is the same value.
        assert_eq!(
            Model::parse("flatten   linear(10)").map(|m| Value::Text(m.0)),
            Ok(Value::Text(Model::parse("flatten linear(10)").unwrap().0))
        );
    }

    #[test]
    fn a_model_that_does_not_fit_the_dataset_is_refused_where_it_is_written() {
        let text = format!(
            "{HEAD}[experiment.grid]\nmodel = [\"flatten linear(10)\", \"conv(4,3) linear(10)\"]\n"
        );
        let e = Grid::parse(&text, "g.toml").unwrap_err().to_string();
        assert_eq!(
            e,
            "g.toml:7:32: experiment[0].grid.model[1]: model \"conv(4,3) linear(10)\" cannot be \
             built for fashion-mnist (1x28x28 images): layer 2 `linear(10)`: needs flat \
             features, got 4x26x26; add flatten or gap before it"
        );
        // The same model fits CIFAR-10's images differently.
        let cifar = text
            .replace("fashion-mnist", "cifar10")
            .replace("conv(4,3) linear(10)", "conv(4,32) flatten linear(10)");
        assert!(Grid::parse(&cifar, "g.toml").is_ok());
        let sampled = format!(
            "{HEAD}[experiment.sample]\ntrials = 2\n[experiment.sample.space]\nmodel = {{ choice = [\"gap linear(10)\", \"gap relu gap linear(10)\"] }}\n"
        );
        let e = Grid::parse(&sampled, "g.toml").unwrap_err().to_string();
        assert!(e.contains("layer 3 `gap`: needs an image"), "{e}");
    }
}

#[cfg(test)]
mod example {
    use crate::grid::{Grid, Param};

    /// `examples/cnn-fashion.toml`, which README.md tells people to run, loads.
    #[test]
    fn the_cnn_example_loads() {
        let text = include_str!("../../../examples/cnn-fashion.toml");
        let g = Grid::parse(text, "examples/cnn-fashion.toml").unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g.experiments[0].axes[0].param, Param::Model);
    }

    /// `examples/lab2-cnn-cifar10.toml` loads: four CNNs (two depths, two widths) with and
    /// without the random crop, every training option set.
    #[test]
    fn the_lab2_example_loads() {
        let text = include_str!("../../../examples/lab2-cnn-cifar10.toml");
        let g = Grid::parse(text, "examples/lab2-cnn-cifar10.toml").unwrap();
        assert_eq!(g.len(), 8);
        let axes: Vec<Param> = g.experiments[0].axes.iter().map(|a| a.param).collect();
        assert_eq!(axes, [Param::Model, Param::RandomCrop]);
        let t = g.trials().next().unwrap();
        assert_eq!(t.params.random_flip, 0.5);
        assert_eq!(t.params.label_smoothing, 0.1);
    }
}
