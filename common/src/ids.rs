//! Identifiers: trials are named by their content (UUID v5), workers by a random UUID v4.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Namespace of trial ids. Changing it changes every trial id: never do that.
const TRIAL_NAMESPACE: Uuid = Uuid::from_u128(0x6d2f_1c3a_9e0b_4c57_8a41_52f3_d0e9_a7b1);

/// A trial's id: a UUID v5 of the trial's canonical content, so the same grid cell always gets
/// the same id, on any machine, whatever the order of the grid file's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrialId(Uuid);

impl TrialId {
    /// The id of the trial whose canonical content is `canonical` (see `TrialSpec::canonical`).
    pub fn from_content(canonical: &str) -> Self {
        Self(Uuid::new_v5(&TRIAL_NAMESPACE, canonical.as_bytes()))
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The first 8 hex digits: enough to tell trials apart in logs.
    pub fn short(&self) -> String {
        self.0.simple().to_string()[..8].to_owned()
    }
}

/// A worker's id, assigned by the coordinator when the worker registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkerId(Uuid);

impl WorkerId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// An id from a UUID (tests and decoding).
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The first 8 hex digits.
    pub fn short(&self) -> String {
        self.0.simple().to_string()[..8].to_owned()
    }
}

/// Error for a string that is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {given:?}: expected a UUID such as 67e55044-10b1-426f-9247-bb680e5fe0c8")]
pub struct InvalidId {
    /// The string that was given (cut to 64 characters).
    pub given: String,
}

macro_rules! uuid_newtype_impls {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $t {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| InvalidId {
                    given: s.chars().take(64).collect(),
                })
            }
        }
    };
}

uuid_newtype_impls!(TrialId);
uuid_newtype_impls!(WorkerId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trial_ids_are_content_addressed() {
        let a = TrialId::from_content("x");
        assert_eq!(a, TrialId::from_content("x"));
        assert_ne!(a, TrialId::from_content("y"));
        assert_eq!(a.to_string().parse::<TrialId>(), Ok(a));
        assert!("not-a-uuid".parse::<TrialId>().is_err());
        assert_eq!(a.short().len(), 8);
    }
}
