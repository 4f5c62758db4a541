//! YARN container ids, as the RM, the NM and the guarder write them.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A parsed YARN container id such as `container_e17_1410901177871_0001_01_000005`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId {
    /// RM restart epoch (`e17`), absent on clusters that never restarted with work preserving.
    pub epoch: Option<u32>,
    /// RM start time in milliseconds, the first part of the application id.
    pub cluster_timestamp: u64,
    /// Application sequence number.
    pub application: u32,
    /// Application attempt number.
    pub attempt: u32,
    /// Container sequence number within the attempt; 1 is the ApplicationMaster.
    pub container: u64,
    digits: Widths,
}

/// Digit counts of the original text, so that formatting gives back the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Widths {
    application: u8,
    attempt: u8,
    container: u8,
}

/// Why a string is not a container id.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "{text:?} is not a YARN container id (container_[e<epoch>_]<clusterTs>_<app>_<attempt>_<container>): {reason}"
)]
pub struct ContainerIdError {
    text: String,
    reason: &'static str,
}

impl ContainerId {
    /// True for the first container of an attempt, which YARN always gives to the
    /// ApplicationMaster.
    pub const fn is_application_master(&self) -> bool {
        self.container == 1
    }

    /// The application id (`application_<clusterTs>_<app>`).
    pub fn application_id(&self) -> String {
        format!(
            "application_{}_{:0width$}",
            self.cluster_timestamp,
            self.application,
            width = usize::from(self.digits.application)
        )
    }
}

fn digits_field(
    text: &str,
    part: Option<&str>,
    min_digits: usize,
    what: &'static str,
) -> Result<(u64, u8), ContainerIdError> {
    let err = |reason| ContainerIdError {
        text: text.to_owned(),
        reason,
    };
    let part = part.ok_or_else(|| err(what))?;
    if part.len() < min_digits || part.len() > 19 || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(what));
    }
    let value = part.parse::<u64>().map_err(|_| err(what))?;
    let width = u8::try_from(part.len()).map_err(|_| err(what))?;
    Ok((value, width))
}

impl FromStr for ContainerId {
    type Err = ContainerIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| ContainerIdError {
            text: text.to_owned(),
            reason,
        };
        let rest = text
            .strip_prefix("container_")
            .ok_or_else(|| err("missing the container_ prefix"))?;
        let mut parts = rest.split('_').peekable();
        let epoch = match parts.peek() {
            Some(first) if first.starts_with('e') => {
                let digits = &first[1..];
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("epoch must be e followed by digits"));
                }
                let epoch = digits
                    .parse::<u32>()
                    .map_err(|_| err("epoch out of range"))?;
                parts.next();
                Some(epoch)
            }
            _ => None,
        };
        let (cluster_timestamp, _) = digits_field(text, parts.next(), 1, "bad cluster timestamp")?;
        let (application, app_width) =
            digits_field(text, parts.next(), 4, "application number needs 4+ digits")?;
        let (attempt, attempt_width) =
            digits_field(text, parts.next(), 2, "attempt number needs 2+ digits")?;
        let (container, container_width) =
            digits_field(text, parts.next(), 6, "container number needs 6+ digits")?;
        if parts.next().is_some() {
            return Err(err("unexpected trailing part"));
        }
        Ok(ContainerId {
            epoch,
            cluster_timestamp,
            application: u32::try_from(application).map_err(|_| err("application out of range"))?,
            attempt: u32::try_from(attempt).map_err(|_| err("attempt out of range"))?,
            container,
            digits: Widths {
                application: app_width,
                attempt: attempt_width,
                container: container_width,
            },
        })
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("container_")?;
        if let Some(epoch) = self.epoch {
            write!(f, "e{epoch:02}_")?;
        }
        write!(
            f,
            "{}_{:0aw$}_{:0tw$}_{:0cw$}",
            self.cluster_timestamp,
            self.application,
            self.attempt,
            self.container,
            aw = usize::from(self.digits.application),
            tw = usize::from(self.digits.attempt),
            cw = usize::from(self.digits.container),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("container_1410901177871_0001_01_000005", None, 1, 5)]
    #[case("container_e17_1410901177871_0001_01_000001", Some(17), 1, 1)]
    #[case(
        "container_e03_1700000000000_12345_02_1000001",
        Some(3),
        12345,
        1_000_001
    )]
    fn parses_ids_with_and_without_epoch(
        #[case] text: &str,
        #[case] epoch: Option<u32>,
        #[case] application: u32,
        #[case] container: u64,
    ) {
        let id: ContainerId = text.parse().unwrap();
        assert_eq!(id.epoch, epoch);
        assert_eq!(id.application, application);
        assert_eq!(id.container, container);
        assert_eq!(id.to_string(), text);
        assert_eq!(id.is_application_master(), container == 1);
    }

    #[test]
    fn application_id_keeps_zero_padding() {
        let id: ContainerId = "container_e17_1410901177871_0001_01_000005"
            .parse()
            .unwrap();
        assert_eq!(id.application_id(), "application_1410901177871_0001");
    }

    #[rstest]
    #[case("")]
    #[case("container_")]
    #[case("application_1410901177871_0001")]
    #[case("container_1410901177871_001_01_000005")]
    #[case("container_1410901177871_0001_1_000005")]
    #[case("container_1410901177871_0001_01_00005")]
    #[case("container_ex_1410901177871_0001_01_000005")]
    #[case("container_1410901177871_0001_01_000005_7")]
    #[case("container_1410901177871_0001_01_0000a5")]
    fn refuses_what_is_not_a_container_id(#[case] text: &str) {
        let err = text.parse::<ContainerId>().unwrap_err();
        assert!(err.to_string().contains("is not a YARN container id"));
    }
}
