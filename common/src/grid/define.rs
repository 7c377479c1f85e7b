//! What a hyperparameter is, in the terms the table in `params.rs` declares it: its definition
//! ([`ParamDef`]: key, domain, default, identity rule, report label, aliases), a checked value
//! ([`Value`]), a value as given before it is checked ([`Raw`]), and how a value becomes a typed
//! field of `HyperParams` ([`Field`]). The two macros that write the table's Rust
//! (`hyperparameters!` and `choices!`) are here too. Nothing here names a hyperparameter.

use std::fmt;

/// One value of a choice hyperparameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Choice {
    /// The name in grid files, `results.json` and on the wire (`relu`).
    pub name: &'static str,
    /// The name trial names and reports show (`ReLU`, PyTorch's module name).
    pub display: &'static str,
}

/// The values a hyperparameter takes: what a grid file may give, what the wire accepts, and
/// the range anything that draws values (a sampler) draws from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Domain {
    /// One of these names (a string in grid files).
    Choice(&'static [Choice]),
    /// An integer in `min..=max`.
    Int {
        /// The smallest.
        min: u64,
        /// The largest.
        max: u64,
    },
    /// A finite number between two bounds.
    Float {
        /// The lower bound.
        min: Bound,
        /// The upper bound.
        max: Bound,
    },
    /// A fraction in (0, 1].
    Fraction,
    /// A model, as `common::model` spells it (a string in grid files).
    Model,
}

impl Domain {
    /// The choice named `name`, in a choice domain.
    pub fn choice(&self, name: &str) -> Option<&'static Choice> {
        match self {
            Domain::Choice(choices) => choices.iter().find(|c| c.name == name),
            Domain::Int { .. } | Domain::Float { .. } | Domain::Fraction | Domain::Model => None,
        }
    }

    /// True when `value` is one of the domain's values.
    pub fn contains(&self, value: Value) -> bool {
        match (*self, value) {
            (Domain::Choice(choices), Value::Choice(c)) => choices.contains(c),
            (Domain::Int { min, max }, Value::Int(i)) => (min..=max).contains(&i),
            (Domain::Float { min, max }, Value::Float(x)) => {
                // -0 would be a second spelling of 0 in ids and axes.
                let negative_zero = x == 0.0 && x.is_sign_negative();
                x.is_finite() && !negative_zero && min.lower_admits(x) && max.upper_admits(x)
            }
            (Domain::Fraction, Value::Float(x)) => x > 0.0 && x <= 1.0,
            (Domain::Model, Value::Text(t)) => crate::model::Model::parse(t).is_ok(),
            (
                Domain::Choice(_)
                | Domain::Int { .. }
                | Domain::Float { .. }
                | Domain::Fraction
                | Domain::Model,
                _,
            ) => false,
        }
    }
}

/// A bound of a [`Domain::Float`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// The bound is allowed.
    Closed(f64),
    /// The bound itself is not allowed.
    Open(f64),
}

impl Bound {
    /// True when `x` is within this bound as a lower bound.
    pub fn lower_admits(self, x: f64) -> bool {
        match self {
            Bound::Closed(b) => x >= b,
            Bound::Open(b) => x > b,
        }
    }

    /// True when `x` is within this bound as an upper bound.
    pub fn upper_admits(self, x: f64) -> bool {
        match self {
            Bound::Closed(b) => x <= b,
            Bound::Open(b) => x < b,
        }
    }
}

/// A checked hyperparameter value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A choice, by its definition.
    Choice(&'static Choice),
    /// An integer (every built-in integer hyperparameter is at least 0).
    Int(u64),
    /// A finite number.
    Float(f64),
    /// A text in its canonical spelling, kept for the process's life (a model).
    Text(&'static str),
}

impl Value {
    /// As trial names, axes and reports show it: `ReLU`, `2`, `0.001`, `1`.
    pub fn display(self) -> String {
        match self {
            Value::Choice(c) => c.display.to_owned(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Text(t) => t.to_owned(),
        }
    }

    /// As a trial's canonical text (and so its id) writes it: `relu`, `2`, `0.001`, `1.0`.
    pub fn canonical(self) -> impl fmt::Display {
        struct InCanonicalText(Value);
        impl fmt::Display for InCanonicalText {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Value::Choice(c) => f.write_str(c.name),
                    Value::Int(i) => write!(f, "{i}"),
                    Value::Float(x) => write!(f, "{x:?}"),
                    Value::Text(t) => write!(f, "{t:?}"),
                }
            }
        }
        InCanonicalText(self)
    }

    /// A key equal for equal values (numbers by their bits; checked values are never NaN or
    /// -0), for finding duplicates.
    pub fn identity(self) -> Identity {
        match self {
            Value::Choice(c) => Identity::Choice(c.name),
            Value::Int(i) => Identity::Int(i),
            Value::Float(x) => Identity::Float(x.to_bits()),
            Value::Text(t) => Identity::Text(t),
        }
    }
}

/// What makes two [`Value`]s the same (see [`Value::identity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    /// A choice's name.
    Choice(&'static str),
    /// An integer.
    Int(u64),
    /// A number's bits.
    Float(u64),
    /// A text.
    Text(&'static str),
}

/// A hyperparameter's value as given, before it is checked: what a grid file or the wire holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Raw<'a> {
    /// A string (a choice's name).
    Str(&'a str),
    /// An integer (wide enough for TOML's `i64` and the wire's `u64`).
    Int(i128),
    /// A number.
    Float(f64),
}

impl fmt::Display for Raw<'_> {
    /// As a message quotes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Raw::Str(s) => {
                let short: String = s.chars().take(64).collect();
                let more = if short.len() < s.len() { "..." } else { "" };
                write!(f, "{short:?}{more}")
            }
            Raw::Int(i) => write!(f, "{i}"),
            Raw::Float(x) => write!(f, "{x}"),
        }
    }
}

/// The value of a hyperparameter that a grid file neither fixes nor varies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fallback {
    /// This value.
    Value(Value),
    /// The sweep's seed (`[sweep] seed`).
    SweepSeed,
}

impl Fallback {
    /// The value, given the sweep's seed.
    pub fn value(self, sweep_seed: u64) -> Value {
        match self {
            Fallback::Value(v) => v,
            Fallback::SweepSeed => Value::Int(sweep_seed),
        }
    }
}

/// Whether a trial's canonical text, and so its id, names a hyperparameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canonical {
    /// Always: the hyperparameters of `sweep-trial-v1`, which every id has named from the start.
    Always,
    /// Only when its value is not its default ([`Fallback::Value`]); where it is absent (an id,
    /// the wire, a stored trial of an older version) it has its default. Every hyperparameter
    /// added after the first eight is this, so adding one changes no existing trial's id and
    /// an existing state directory still resumes.
    UnlessDefault,
}

/// Everything about one hyperparameter, as its row of the table declares it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamDef {
    /// The key in grid files, `trial_name` templates, `results.json` and on the wire.
    pub key: &'static str,
    /// The values it takes.
    pub domain: Domain,
    /// Its value when a grid file neither fixes nor varies it.
    pub default: Fallback,
    /// Whether every trial's id names it, or only away from its default.
    pub canonical: Canonical,
    /// Its name in report tables and legends (`Hidden layers`).
    pub label: &'static str,
    /// The plural for report titles (`numbers of hidden layers`).
    pub plural: &'static str,
    /// Other words people write for it (`lr`), which "did you mean" maps to its key.
    pub aliases: &'static [&'static str],
    /// Its path in a wire trial, which decoding errors name (`trial.learning_rate`).
    pub wire_field: &'static str,
}

impl ParamDef {
    /// The value an absent entry stands for (an id, the wire, a stored trial), for a
    /// hyperparameter that may be absent ([`Canonical::UnlessDefault`]).
    pub fn omitted(&self) -> Option<Value> {
        match (self.canonical, self.default) {
            (Canonical::UnlessDefault, Fallback::Value(v)) => Some(v),
            (Canonical::Always, _) | (Canonical::UnlessDefault, Fallback::SweepSeed) => None,
        }
    }
}

/// A Rust type that holds a hyperparameter in `HyperParams`: the conversions between it and
/// [`Value`]. `to_value` loses nothing; `from_value` is `None` for a value of another kind or
/// one the type cannot hold.
pub trait Field: Copy {
    /// The value of the field.
    fn to_value(self) -> Value;
    /// The field holding `value`.
    fn from_value(value: Value) -> Option<Self>;
}

impl Field for u32 {
    fn to_value(self) -> Value {
        u64::from(self).to_value()
    }

    fn from_value(value: Value) -> Option<Self> {
        u64::from_value(value).and_then(|i| u32::try_from(i).ok())
    }
}

impl Field for u64 {
    fn to_value(self) -> Value {
        Value::Int(self)
    }

    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Int(i) => Some(i),
            Value::Choice(_) | Value::Float(_) | Value::Text(_) => None,
        }
    }
}

impl Field for f64 {
    fn to_value(self) -> Value {
        Value::Float(self)
    }

    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Float(x) => Some(x),
            Value::Choice(_) | Value::Int(_) | Value::Text(_) => None,
        }
    }
}

impl Field for crate::model::Model {
    fn to_value(self) -> Value {
        Value::Text(self.0)
    }

    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Text(t) => crate::model::Model::parse(t).ok(),
            Value::Choice(_) | Value::Int(_) | Value::Float(_) => None,
        }
    }
}

/// A name that is none of a choice hyperparameter's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown {what} {given:?}; allowed: {}",
    allowed.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
)]
pub struct UnknownChoice {
    /// What was asked for (`activation`).
    pub what: &'static str,
    /// The name given.
    pub given: String,
    /// The values there are.
    pub allowed: &'static [Choice],
}

/// Declares the enum of a choice hyperparameter's values: each variant with its name (grid
/// files, the wire, `results.json`) and its display name (trial names, reports). Gives the
/// enum `ALL`, `CHOICES`, `choice`, `name`, `display_name`, `FromStr`, `Display`, serde as the
/// name, and [`Field`].
macro_rules! choices {
    (
        $(#[doc = $doc:literal])+
        pub enum $name:ident: $what:literal {
            $(
                $(#[doc = $vdoc:literal])+
                $variant:ident = $key:literal / $display:literal,
            )+
        }
    ) => {
        $(#[doc = $doc])+
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[doc = $vdoc])+ $variant, )+
        }

        impl $name {
            /// Every value, in the order messages list them.
            pub const ALL: [$name; [$($key),+].len()] = [$($name::$variant),+];

            /// Every value's names, in the order of `ALL`.
            pub const CHOICES: &'static [$crate::grid::Choice] =
                &[$($crate::grid::Choice { name: $key, display: $display }),+];

            /// The names of this value.
            pub const fn choice(self) -> &'static $crate::grid::Choice {
                &Self::CHOICES[self as usize]
            }

            /// The name used in grid files and on the wire.
            pub fn name(self) -> &'static str {
                self.choice().name
            }

            /// The name trial names and reports show.
            pub fn display_name(self) -> &'static str {
                self.choice().display
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.display_name())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::grid::UnknownChoice;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .into_iter()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| $crate::grid::UnknownChoice {
                        what: $what,
                        given: s.to_owned(),
                        allowed: $name::CHOICES,
                    })
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = <::std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                name.parse().map_err(::serde::de::Error::custom)
            }
        }

        impl $crate::grid::Field for $name {
            fn to_value(self) -> $crate::grid::Value {
                $crate::grid::Value::Choice(self.choice())
            }

            fn from_value(value: $crate::grid::Value) -> Option<Self> {
                match value {
                    $crate::grid::Value::Choice(c) => $name::ALL.into_iter().find(|v| v.name() == c.name),
                    $crate::grid::Value::Int(_)
                    | $crate::grid::Value::Float(_)
                    | $crate::grid::Value::Text(_) => None,
                }
            }
        }
    };
}

/// Declares every hyperparameter from one row each: the `Param` enum (declaration order is the
/// axis order), the table of [`ParamDef`]s (`Param::def`), and the `HyperParams` struct a trial
/// carries, with its conversions from and to [`Value`]s and its serde form (an absent
/// [`Canonical::UnlessDefault`] field reads as its default, so state written before it existed
/// still loads). The row's doc comment documents both the variant and the field.
macro_rules! hyperparameters {
    (
        $(
            #[doc = $doc:literal]
            $variant:ident $field:ident: $ty:ty {
                domain: $domain:expr,
                default: $default:expr,
                canonical: $canonical:ident,
                label: $label:literal,
                plural: $plural:literal,
                aliases: [$($alias:literal),* $(,)?] $(,)?
            }
        )+
    ) => {
        /// A hyperparameter that a grid file can fix or vary. The declaration order is the axis
        /// order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Param {
            $( #[doc = $doc] $variant, )+
        }

        impl Param {
            /// How many there are.
            pub const COUNT: usize = [$(stringify!($field)),+].len();

            /// Every hyperparameter, in axis order.
            pub const ALL: [Param; Param::COUNT] = [$(Param::$variant),+];

            /// Every key, in axis order.
            pub const KEYS: [&'static str; Param::COUNT] = [$(stringify!($field)),+];

            /// Its row of the table.
            pub fn def(self) -> &'static $crate::grid::ParamDef {
                &DEFS[self as usize]
            }
        }

        /// The table: one definition per hyperparameter, in axis order.
        static DEFS: [$crate::grid::ParamDef; Param::COUNT] = [
            $(
                $crate::grid::ParamDef {
                    key: stringify!($field),
                    domain: $domain,
                    default: $default,
                    canonical: $crate::grid::Canonical::$canonical,
                    label: $label,
                    plural: $plural,
                    aliases: &[$($alias),*],
                    wire_field: concat!("trial.", stringify!($field)),
                },
            )+
        ];

        /// The hyperparameters of one trial: the values every grid axis resolves to.
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize)]
        pub struct HyperParams {
            $( #[doc = $doc] pub $field: $ty, )+
        }

        impl HyperParams {
            /// The value of `param`.
            pub fn get(&self, param: Param) -> $crate::grid::Value {
                match param {
                    $( Param::$variant => $crate::grid::Field::to_value(self.$field), )+
                }
            }

            /// The hyperparameters whose values `value` gives; where it gives none, the value
            /// an absent entry stands for ([`ParamDef::omitted`]). The values are not checked
            /// against their domains; a value of the wrong kind is an error.
            ///
            /// [`ParamDef::omitted`]: $crate::grid::ParamDef::omitted
            pub fn from_values(
                mut value: impl FnMut(Param) -> Option<$crate::grid::Value>,
            ) -> Result<HyperParams, ParamError> {
                Ok(HyperParams {
                    $( $field: typed(Param::$variant, value(Param::$variant))?, )+
                })
            }
        }

        impl<'de> ::serde::Deserialize<'de> for HyperParams {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                #[derive(::serde::Deserialize)]
                struct Stored {
                    $( #[serde(default)] $field: Option<$ty>, )+
                }
                let stored = Stored::deserialize(deserializer)?;
                HyperParams::from_values(|param| match param {
                    $( Param::$variant => stored.$field.map($crate::grid::Field::to_value), )+
                })
                .map_err(::serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use {choices, hyperparameters};
