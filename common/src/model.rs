//! Architectures as the grid file describes them: the `model` hyperparameter, a one-line list of
//! layers (`conv(16,3,p=1) bn relu maxpool(2) flatten linear(10)`), parsed into a
//! [`ModelSpec`], written back in one canonical spelling (trial ids name that), and checked
//! against a dataset's image shape by shape inference ([`ModelSpec::infer`]) when the grid is
//! loaded, so a model that cannot be built is refused before any trial runs.
//!
//! `mlp` (the default) is lab 1's MLP, built from `activation`, `hidden_layers` and
//! `hidden_width`; every other spec is built layer by layer. Pure: no tch here; the worker
//! builds the layers (`worker::train::net`).

use std::collections::HashSet;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use crate::dataset::DatasetKind;

/// Longest spec, in bytes.
pub const MAX_SPEC_LEN: usize = 2048;
/// Most layers in a spec.
pub const MAX_LAYERS: usize = 128;
/// Largest channel or feature count.
const MAX_WIDTH: u64 = 16_384;
/// Largest kernel, stride or padding.
const MAX_WINDOW: u64 = 64;
/// Most parameters a model may have (4 GiB of f32 weights; Adam keeps two more copies).
const MAX_PARAMETERS: u64 = 1 << 30;
/// Most bytes of distinct specs kept for the process's life ([`intern`]).
const MAX_INTERNED_BYTES: usize = 16 << 20;

/// One layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layer {
    /// `conv(out,kernel,s=stride,p=padding)`: a 2-d convolution with bias.
    Conv {
        /// Output channels.
        out: u64,
        /// Kernel size (square).
        kernel: u64,
        /// Stride (1 unless given).
        stride: u64,
        /// Zero padding on each side (0 unless given).
        padding: u64,
    },
    /// `bn`: batch norm over channels (2-d) or features (1-d), PyTorch's defaults.
    BatchNorm,
    /// `relu`.
    Relu,
    /// `tanh`.
    Tanh,
    /// `sigmoid`.
    Sigmoid,
    /// `maxpool(k,s=stride)`: max pooling, stride `k` unless given.
    MaxPool {
        /// Window size.
        kernel: u64,
        /// Stride.
        stride: u64,
    },
    /// `avgpool(k,s=stride)`: average pooling, stride `k` unless given.
    AvgPool {
        /// Window size.
        kernel: u64,
        /// Stride.
        stride: u64,
    },
    /// `gap`: global average pooling to one value per channel (a flat output).
    GlobalAvgPool,
    /// `gmp`: global max pooling to one value per channel (a flat output).
    GlobalMaxPool,
    /// `dropout(p)`: zeroes each value with probability `p` while training.
    Dropout {
        /// Probability, in [0, 1).
        p: f64,
    },
    /// `res(out,s=stride)`: a basic residual block (conv3x3-bn-relu-conv3x3-bn, plus the input,
    /// through a 1x1 conv and bn when the shape changes, then relu).
    Residual {
        /// Output channels.
        out: u64,
        /// Stride of the first convolution and of the shortcut.
        stride: u64,
    },
    /// `flatten`.
    Flatten,
    /// `linear(out)`: a fully connected layer with bias.
    Linear {
        /// Output features.
        out: u64,
    },
}

/// The shape of the values between two layers, per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Channels x height x width.
    Image {
        /// Channels.
        c: u64,
        /// Height.
        h: u64,
        /// Width.
        w: u64,
    },
    /// Features.
    Flat(u64),
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Image { c, h, w } => write!(f, "{c}x{h}x{w}"),
            Shape::Flat(n) => write!(f, "{n} features"),
        }
    }
}

/// A model: lab 1's MLP or a list of layers.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    /// `mlp`: built from `activation`, `hidden_layers` and `hidden_width`.
    Mlp,
    /// The layers, in order.
    Layers(Vec<Layer>),
}

/// What shape inference found: the shape after each layer and the parameter count.
#[derive(Debug, Clone, PartialEq)]
pub struct Inferred {
    /// The input's shape.
    pub input: Shape,
    /// The shape after each layer.
    pub shapes: Vec<Shape>,
    /// Trainable parameters.
    pub parameters: u64,
}

impl fmt::Display for Layer {
    /// The canonical spelling: defaults left out, no spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |name: &str, v: u64, default: u64| {
            if v == default {
                String::new()
            } else {
                format!(",{name}={v}")
            }
        };
        match *self {
            Layer::Conv {
                out,
                kernel,
                stride,
                padding,
            } => write!(
                f,
                "conv({out},{kernel}{}{})",
                opt("s", stride, 1),
                opt("p", padding, 0)
            ),
            Layer::BatchNorm => f.write_str("bn"),
            Layer::Relu => f.write_str("relu"),
            Layer::Tanh => f.write_str("tanh"),
            Layer::Sigmoid => f.write_str("sigmoid"),
            Layer::MaxPool { kernel, stride } => {
                write!(f, "maxpool({kernel}{})", opt("s", stride, kernel))
            }
            Layer::AvgPool { kernel, stride } => {
                write!(f, "avgpool({kernel}{})", opt("s", stride, kernel))
            }
            Layer::GlobalAvgPool => f.write_str("gap"),
            Layer::GlobalMaxPool => f.write_str("gmp"),
            Layer::Dropout { p } => write!(f, "dropout({p})"),
            Layer::Residual { out, stride } => write!(f, "res({out}{})", opt("s", stride, 1)),
            Layer::Flatten => f.write_str("flatten"),
            Layer::Linear { out } => write!(f, "linear({out})"),
        }
    }
}

impl fmt::Display for ModelSpec {
    /// The canonical spelling: layers separated by one space.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Mlp => f.write_str("mlp"),
            ModelSpec::Layers(layers) => {
                for (i, l) in layers.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{l}")?;
                }
                Ok(())
            }
        }
    }
}

/// What every layer's spelling is, for messages.
pub const LAYERS_HELP: &str = "layers separated by spaces: conv(out,kernel,s=stride,p=padding), \
     bn, relu, tanh, sigmoid, maxpool(k,s=stride), avgpool(k,s=stride), gap, gmp, dropout(p), \
     res(out,s=stride), flatten, linear(out); or mlp";

/// The arguments of one layer: positional numbers and `name=number` options.
struct Args<'a> {
    layer: &'a str,
    positional: Vec<&'a str>,
    named: Vec<(&'a str, &'a str)>,
}

impl<'a> Args<'a> {
    fn parse(layer: &'a str, inside: Option<&'a str>) -> Result<Self, String> {
        let mut args = Args {
            layer,
            positional: Vec::new(),
            named: Vec::new(),
        };
        if let Some(inside) = inside {
            for a in inside.split(',') {
                let a = a.trim();
                match a.split_once('=') {
                    Some((k, v)) => args.named.push((k.trim(), v.trim())),
                    None if !args.named.is_empty() => {
                        return Err(format!(
                            "{layer}: positional argument {a:?} after a named one"
                        ));
                    }
                    None => args.positional.push(a),
                }
            }
        }
        Ok(args)
    }

    /// Checks the counts: `positional` numbers exactly, and only the `options` named.
    fn expect(&self, positional: &[&str], options: &[&str]) -> Result<(), String> {
        let usage = || {
            let mut all: Vec<String> = positional.iter().map(|s| (*s).to_owned()).collect();
            all.extend(options.iter().map(|o| format!("{o}=N")));
            if all.is_empty() {
                self.layer.to_owned()
            } else {
                format!("{}({})", self.layer, all.join(","))
            }
        };
        if self.positional.len() != positional.len() {
            return Err(format!(
                "{} takes {} argument(s), got {}; write {}",
                self.layer,
                positional.len(),
                self.positional.len(),
                usage()
            ));
        }
        let mut seen = HashSet::new();
        for (k, _) in &self.named {
            if !options.contains(k) {
                return Err(format!(
                    "{}: unknown option {k:?}; write {}",
                    self.layer,
                    usage()
                ));
            }
            if !seen.insert(*k) {
                return Err(format!("{}: option {k} given twice", self.layer));
            }
        }
        Ok(())
    }

    fn int(&self, what: &str, text: &str, min: u64, max: u64) -> Result<u64, String> {
        match text.parse::<u64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(format!(
                "{}: {what} must be an integer from {min} to {max}, got {text:?}",
                self.layer
            )),
        }
    }

    fn pos(&self, i: usize, what: &str, min: u64, max: u64) -> Result<u64, String> {
        self.int(what, self.positional[i], min, max)
    }

    fn opt(&self, name: &str, what: &str, min: u64, default: u64) -> Result<u64, String> {
        match self.named.iter().find(|(k, _)| *k == name) {
            Some((_, v)) => self.int(what, v, min, MAX_WINDOW),
            None => Ok(default),
        }
    }
}

impl std::str::FromStr for ModelSpec {
    type Err = String;

    /// Parses a spec; the error says what is wrong and what is allowed.
    fn from_str(text: &str) -> Result<Self, String> {
        if text.len() > MAX_SPEC_LEN {
            return Err(format!(
                "a model is at most {MAX_SPEC_LEN} bytes, this one has {}",
                text.len()
            ));
        }
        if text.trim() == "mlp" {
            return Ok(ModelSpec::Mlp);
        }
        let mut layers = Vec::new();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            let name_end = rest
                .find(|c: char| !c.is_ascii_lowercase())
                .unwrap_or(rest.len());
            let name = &rest[..name_end];
            rest = &rest[name_end..];
            let inside = if let Some(after) = rest.strip_prefix('(') {
                let close = after
                    .find(')')
                    .ok_or_else(|| format!("{name}: '(' without ')'"))?;
                let inside = &after[..close];
                rest = &after[close + 1..];
                Some(inside)
            } else {
                None
            };
            if name.is_empty() {
                let c = rest.chars().next().unwrap_or(' ');
                return Err(format!("unexpected {c:?}; a model is {LAYERS_HELP}"));
            }
            if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
                return Err(format!("{name}: separate layers with spaces"));
            }
            rest = rest.trim_start();
            layers.push(layer(name, inside)?);
            if layers.len() > MAX_LAYERS {
                return Err(format!("a model has at most {MAX_LAYERS} layers"));
            }
        }
        if layers.is_empty() {
            return Err(format!("a model needs at least one layer; {LAYERS_HELP}"));
        }
        Ok(ModelSpec::Layers(layers))
    }
}

/// One layer from its name and the text between its parentheses.
fn layer(name: &str, inside: Option<&str>) -> Result<Layer, String> {
    let a = Args::parse(name, inside)?;
    let plain = |l: Layer| -> Result<Layer, String> {
        if inside.is_some() {
            return Err(format!("{name} takes no arguments; write {name}"));
        }
        Ok(l)
    };
    Ok(match name {
        "conv" => {
            a.expect(&["out", "kernel"], &["s", "p"])?;
            Layer::Conv {
                out: a.pos(0, "out", 1, MAX_WIDTH)?,
                kernel: a.pos(1, "kernel", 1, MAX_WINDOW)?,
                stride: a.opt("s", "stride", 1, 1)?,
                padding: a.opt("p", "padding", 0, 0)?,
            }
        }
        "maxpool" | "avgpool" => {
            a.expect(&["kernel"], &["s"])?;
            let kernel = a.pos(0, "kernel", 1, MAX_WINDOW)?;
            let stride = a.opt("s", "stride", 1, kernel)?;
            if name == "maxpool" {
                Layer::MaxPool { kernel, stride }
            } else {
                Layer::AvgPool { kernel, stride }
            }
        }
        "res" => {
            a.expect(&["out"], &["s"])?;
            Layer::Residual {
                out: a.pos(0, "out", 1, MAX_WIDTH)?,
                stride: a.opt("s", "stride", 1, 1)?,
            }
        }
        "linear" => {
            a.expect(&["out"], &[])?;
            Layer::Linear {
                out: a.pos(0, "out", 1, MAX_WIDTH)?,
            }
        }
        "dropout" => {
            a.expect(&["p"], &[])?;
            let text = a.positional[0];
            match text.parse::<f64>() {
                Ok(p) if (0.0..1.0).contains(&p) => Layer::Dropout { p: p + 0.0 },
                _ => {
                    return Err(format!(
                        "dropout: p must be a number in [0, 1), got {text:?}"
                    ));
                }
            }
        }
        "bn" => plain(Layer::BatchNorm)?,
        "relu" => plain(Layer::Relu)?,
        "tanh" => plain(Layer::Tanh)?,
        "sigmoid" => plain(Layer::Sigmoid)?,
        "gap" => plain(Layer::GlobalAvgPool)?,
        "gmp" => plain(Layer::GlobalMaxPool)?,
        "flatten" => plain(Layer::Flatten)?,
        "mlp" => return Err("mlp is a whole model; it cannot be one of several layers".into()),
        other => {
            return Err(format!("unknown layer {other:?}; a model is {LAYERS_HELP}"));
        }
    })
}

impl Layer {
    /// The shape after this layer on values of shape `shape`, and the parameters it adds; an
    /// error says why the shape does not fit (the caller names the layer).
    fn infer(&self, shape: Shape) -> Result<(Shape, u64), String> {
        let spatial = |s: Shape| match s {
            Shape::Image { c, h, w } => Ok((c, h, w)),
            Shape::Flat(n) => Err(format!(
                "needs an image (channels x height x width), got {n} features \
                 (after flatten, global pooling or linear)"
            )),
        };
        let fit = |kernel: u64, stride: u64, padding: u64, (c, h, w)| match (
            window(h, kernel, stride, padding),
            window(w, kernel, stride, padding),
        ) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(format!(
                "a {kernel}x{kernel} window does not fit the {c}x{h}x{w} input \
                 with padding {padding}"
            )),
        };
        Ok(match *self {
            Layer::Conv {
                out,
                kernel,
                stride,
                padding,
            } => {
                let (c, h, w) = spatial(shape)?;
                let (h, w) = fit(kernel, stride, padding, (c, h, w))?;
                (
                    Shape::Image { c: out, h, w },
                    out * c * kernel * kernel + out,
                )
            }
            Layer::MaxPool { kernel, stride } | Layer::AvgPool { kernel, stride } => {
                let (c, h, w) = spatial(shape)?;
                let (h, w) = fit(kernel, stride, 0, (c, h, w))?;
                (Shape::Image { c, h, w }, 0)
            }
            Layer::Residual { out, stride } => {
                let (c, h, w) = spatial(shape)?;
                let (h, w) = fit(3, stride, 1, (c, h, w))?;
                let mut weights = out * c * 9 + 2 * out + out * out * 9 + 2 * out;
                if stride != 1 || c != out {
                    weights += out * c + 2 * out;
                }
                (Shape::Image { c: out, h, w }, weights)
            }
            Layer::BatchNorm => {
                let features = match shape {
                    Shape::Image { c, .. } => c,
                    Shape::Flat(n) => n,
                };
                (shape, 2 * features)
            }
            Layer::Relu | Layer::Tanh | Layer::Sigmoid | Layer::Dropout { .. } => (shape, 0),
            Layer::GlobalAvgPool | Layer::GlobalMaxPool => (Shape::Flat(spatial(shape)?.0), 0),
            Layer::Flatten => match shape {
                Shape::Image { c, h, w } => (Shape::Flat(c * h * w), 0),
                flat @ Shape::Flat(_) => (flat, 0),
            },
            Layer::Linear { out } => match shape {
                Shape::Flat(n) => (Shape::Flat(out), n * out + out),
                image @ Shape::Image { .. } => {
                    return Err(format!(
                        "needs flat features, got {image}; add flatten or gap before it"
                    ));
                }
            },
        })
    }
}

/// Output size of a window of `kernel` sliding by `stride` over `size + 2 padding`.
fn window(size: u64, kernel: u64, stride: u64, padding: u64) -> Option<u64> {
    let padded = size + 2 * padding;
    (padded >= kernel).then(|| (padded - kernel) / stride + 1)
}

impl ModelSpec {
    /// The shapes after each layer on images of `dataset`, and the parameter count; an error
    /// names the layer (1-based), its spelling and the shapes that do not fit. The last layer
    /// must give one value per class.
    pub fn infer(&self, dataset: DatasetKind) -> Result<Inferred, String> {
        let [c, h, w] = dataset.image_shape().map(|d| d as u64);
        let input = Shape::Image { c, h, w };
        let classes = dataset.num_classes() as u64;
        let ModelSpec::Layers(layers) = self else {
            return Err("mlp has no layers to infer; its shape comes from hidden_layers".into());
        };
        let mut shape = input;
        let mut shapes = Vec::with_capacity(layers.len());
        let mut parameters: u64 = 0;
        for (i, l) in layers.iter().enumerate() {
            let at = |why: String| format!("layer {} `{l}`: {why}", i + 1);
            let (next, weights) = l.infer(shape).map_err(at)?;
            shape = next;
            parameters += weights;
            if parameters > MAX_PARAMETERS {
                return Err(at(format!(
                    "the model has more than {MAX_PARAMETERS} parameters"
                )));
            }
            shapes.push(shape);
        }
        if shape != Shape::Flat(classes) {
            return Err(format!(
                "the model ends with {shape}, but {dataset} has {classes} classes: \
                 end with linear({classes})"
            ));
        }
        Ok(Inferred {
            input,
            shapes,
            parameters,
        })
    }
}

/// Parameters of lab 1's MLP.
pub fn mlp_parameters(dataset: DatasetKind, hidden_layers: u32, hidden_width: u32) -> u64 {
    let mut dims = vec![dataset.input_len() as u64];
    dims.extend(std::iter::repeat_n(
        u64::from(hidden_width),
        hidden_layers as usize,
    ));
    dims.push(dataset.num_classes() as u64);
    dims.windows(2).map(|d| d[0] * d[1] + d[1]).sum()
}

/// The `model` hyperparameter: a spec's canonical text, kept for the process's life so that
/// hyperparameter values stay `Copy` (see [`intern`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Model(pub &'static str);

impl Model {
    /// Lab 1's MLP, the default.
    pub const MLP: Model = Model("mlp");

    /// The parsed spec. The text was checked when the value was made, so this only fails for
    /// a `Model` built by hand from bad text.
    pub fn spec(self) -> Result<ModelSpec, String> {
        self.0.parse()
    }

    /// Checks `text` and gives the model in its canonical spelling.
    pub fn parse(text: &str) -> Result<Model, String> {
        let spec: ModelSpec = text.parse()?;
        intern(&spec.to_string()).map(Model)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// `text`, kept for the process's life: the same text gives the same reference, and at most
/// [`MAX_INTERNED_BYTES`] of distinct texts are kept (a model spec is checked before it is
/// interned, so only distinct valid specs count).
pub fn intern(text: &str) -> Result<&'static str, String> {
    static KEPT: OnceLock<Mutex<(HashSet<&'static str>, usize)>> = OnceLock::new();
    let kept = KEPT.get_or_init(|| Mutex::new((HashSet::new(), 0)));
    let mut kept = kept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(s) = kept.0.get(text) {
        return Ok(s);
    }
    if kept.1 + text.len() > MAX_INTERNED_BYTES {
        return Err(format!(
            "more than {MAX_INTERNED_BYTES} bytes of distinct models in one process"
        ));
    }
    let s: &'static str = Box::leak(text.to_owned().into_boxed_str());
    kept.0.insert(s);
    kept.1 += s.len();
    Ok(s)
}

impl serde::Serialize for Model {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Model {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Model::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> ModelSpec {
        s.parse().unwrap()
    }

    #[test]
    fn specs_read_and_write_back_canonically() {
        let s = spec(
            "  conv(16, 3, p=1)  bn relu maxpool(2) conv(32,3,s=2,p=1) res(32) res(64,s=2) gap dropout(0.25) linear(10) ",
        );
        assert_eq!(
            s.to_string(),
            "conv(16,3,p=1) bn relu maxpool(2) conv(32,3,s=2,p=1) res(32) res(64,s=2) gap \
             dropout(0.25) linear(10)"
        );
        assert_eq!(spec(&s.to_string()), s);
        assert_eq!(spec("mlp"), ModelSpec::Mlp);
        assert_eq!(spec("maxpool(2,s=2)").to_string(), "maxpool(2)");
        assert_eq!(
            Model::parse("flatten   linear(10)").unwrap().0,
            "flatten linear(10)"
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |s: &str| s.parse::<ModelSpec>().unwrap_err();
        assert!(
            err("conv(16)").contains("conv takes 2 argument(s), got 1"),
            "{}",
            err("conv(16)")
        );
        assert!(err("conv(16,3,x=1)").contains("unknown option \"x\""));
        assert!(err("convv(16,3)").contains("unknown layer \"convv\""));
        assert!(err("dropout(1.5)").contains("[0, 1)"));
        assert!(err("relu(2)").contains("takes no arguments"));
        assert!(err("conv(0,3)").contains("out must be an integer from 1"));
        assert!(err("").contains("at least one layer"));
        assert!(err("relu,bn").contains("unexpected ','") || err("relu,bn").contains("spaces"));
        assert!(err("conv(1,3").contains("without ')'"));
        assert!(err("flatten mlp").contains("whole model"));
        assert!(err(&"relu ".repeat(200)).contains("at most 128 layers"));
    }

    #[test]
    fn shapes_are_inferred() {
        let i = spec("conv(8,3,p=1) bn relu maxpool(2) conv(16,3) relu gap linear(10)")
            .infer(DatasetKind::FashionMnist)
            .unwrap();
        assert_eq!(i.input, Shape::Image { c: 1, h: 28, w: 28 });
        assert_eq!(i.shapes[3], Shape::Image { c: 8, h: 14, w: 14 });
        assert_eq!(
            i.shapes[4],
            Shape::Image {
                c: 16,
                h: 12,
                w: 12
            }
        );
        assert_eq!(i.shapes[6], Shape::Flat(16));
        // conv 8*1*9+8, bn 16, conv 16*8*9+16, linear 16*10+10
        assert_eq!(i.parameters, 80 + 16 + 1168 + 170);
        let r = spec("res(16,s=2) gap linear(10)")
            .infer(DatasetKind::Cifar10)
            .unwrap();
        assert_eq!(
            r.shapes[0],
            Shape::Image {
                c: 16,
                h: 16,
                w: 16
            }
        );
        // As torchvision's BasicBlock with a 1x1 conv + bn shortcut.
        assert_eq!(
            r.parameters,
            (16 * 3 * 9 + 32 + 16 * 16 * 9 + 32 + 16 * 3 + 32) + 170
        );
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused_with_the_shapes() {
        let err = |s: &str| spec(s).infer(DatasetKind::FashionMnist).unwrap_err();
        assert_eq!(
            err("conv(8,3) linear(10)"),
            "layer 2 `linear(10)`: needs flat features, got 8x26x26; add flatten or gap before it"
        );
        assert!(err("gap maxpool(2) linear(10)").starts_with(
            "layer 2 `maxpool(2)`: needs an image (channels x height x width), got 1 features"
        ));
        assert_eq!(
            err("conv(8,29) flatten linear(10)"),
            "layer 1 `conv(8,29)`: a 29x29 window does not fit the 1x28x28 input with padding 0"
        );
        assert_eq!(
            err("flatten linear(5)"),
            "the model ends with 5 features, but fashion-mnist has 10 classes: end with linear(10)"
        );
        assert!(err("flatten linear(16384) linear(16384) linear(16384) linear(16384) linear(16384) linear(10)").contains("parameters"));
    }

    #[test]
    fn mlp_parameters_match_lab1() {
        assert_eq!(
            mlp_parameters(DatasetKind::FashionMnist, 1, 256),
            784 * 256 + 256 + 256 * 10 + 10
        );
    }
}
