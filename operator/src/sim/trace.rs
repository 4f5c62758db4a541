//! Utilization traces: the shape of the online load the simulator replays.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The trace compiled into the binary (Alibaba 2018, day 1; see `operator/traces/README.md`).
const EMBEDDED_DAY: &str = include_str!("../../traces/alibaba2018_day1_10s.csv");
/// Name of the embedded trace.
pub const EMBEDDED_NAME: &str = "alibaba2018_day1_10s";

/// Where a trace came from, as written into the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceProvenance {
    /// Short name (file stem).
    pub name: String,
    /// `embedded` or the file path given.
    pub location: String,
    /// Original source of the data.
    pub source: String,
    /// Licence of the data.
    pub license: String,
    /// Seconds between rows.
    pub step_seconds: u32,
    /// Rows read.
    pub rows: usize,
}

/// One row: data-center CPU and memory utilization in percent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceRow {
    /// CPU utilization, 0-100.
    pub cpu_percent: f64,
    /// Memory utilization, 0-100.
    pub memory_percent: f64,
}

/// A utilization trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// Where it came from.
    pub provenance: TraceProvenance,
    /// Rows in time order, `step_seconds` apart.
    pub rows: Vec<TraceRow>,
}

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("cannot read trace {path}: {source}")]
    Read {
        /// Path given.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The header lacks a needed column.
    #[error(
        "trace {name}: no {column} column in the header (expected cpu_util_percent and mem_util_percent)"
    )]
    MissingColumn {
        /// Trace name.
        name: String,
        /// Missing column.
        column: &'static str,
    },
    /// A row is not usable.
    #[error("trace {name}, line {line}: {message}")]
    BadRow {
        /// Trace name.
        name: String,
        /// 1-based line number in the file.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Too few rows to replay.
    #[error("trace {name} has {rows} rows; at least 2 are needed")]
    TooShort {
        /// Trace name.
        name: String,
        /// Rows found.
        rows: usize,
    },
}

impl Trace {
    /// The embedded default trace.
    pub fn embedded() -> Result<Trace, TraceError> {
        Trace::parse(
            EMBEDDED_DAY,
            TraceProvenance {
                name: EMBEDDED_NAME.to_owned(),
                location: "embedded".to_owned(),
                source: alibaba_source(),
                license: "CC BY 4.0".to_owned(),
                step_seconds: 10,
                rows: 0,
            },
        )
    }

    /// A trace file with the same columns (`cpu_util_percent`, `mem_util_percent`).
    pub fn from_file(path: &Path, step_seconds: u32) -> Result<Trace, TraceError> {
        let text = fs::read_to_string(path).map_err(|source| TraceError::Read {
            path: path.to_owned(),
            source,
        })?;
        let name = path
            .file_stem()
            .map_or_else(|| "trace".to_owned(), |s| s.to_string_lossy().into_owned());
        let alibaba = name.starts_with("alibaba2018");
        Trace::parse(
            &text,
            TraceProvenance {
                name,
                location: path.display().to_string(),
                source: if alibaba {
                    alibaba_source()
                } else {
                    "user-supplied".to_owned()
                },
                license: if alibaba { "CC BY 4.0" } else { "unknown" }.to_owned(),
                step_seconds,
                rows: 0,
            },
        )
    }

    /// Parses CSV text with a header row.
    pub fn parse(text: &str, mut provenance: TraceProvenance) -> Result<Trace, TraceError> {
        let name = provenance.name.clone();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|err| TraceError::BadRow {
            name: name.clone(),
            line: 1,
            message: err.to_string(),
        })?;
        let column = |wanted: &'static str| {
            headers
                .iter()
                .position(|h| h == wanted)
                .ok_or_else(|| TraceError::MissingColumn {
                    name: name.clone(),
                    column: wanted,
                })
        };
        let cpu_column = column("cpu_util_percent")?;
        let memory_column = column("mem_util_percent")?;
        let mut rows = Vec::new();
        for (index, record) in reader.records().enumerate() {
            let line = index + 2;
            let bad = |message: String| TraceError::BadRow {
                name: name.clone(),
                line,
                message,
            };
            let record = record.map_err(|err| bad(err.to_string()))?;
            let value = |column: usize, what: &str| -> Result<f64, TraceError> {
                let text = record.get(column).unwrap_or_default();
                let value: f64 = text
                    .parse()
                    .map_err(|_| bad(format!("{what} {text:?} is not a number")))?;
                if !(0.0..=100.0).contains(&value) {
                    return Err(bad(format!("{what} {value} is outside 0-100")));
                }
                Ok(value)
            };
            rows.push(TraceRow {
                cpu_percent: value(cpu_column, "cpu_util_percent")?,
                memory_percent: value(memory_column, "mem_util_percent")?,
            });
        }
        if rows.len() < 2 {
            return Err(TraceError::TooShort {
                name,
                rows: rows.len(),
            });
        }
        provenance.rows = rows.len();
        Ok(Trace { provenance, rows })
    }

    /// Length of the trace in seconds.
    pub fn span_seconds(&self) -> u64 {
        self.rows.len() as u64 * u64::from(self.provenance.step_seconds.max(1))
    }

    /// CPU and memory percent at second `t`, linearly interpolated between rows; the trace
    /// repeats after its end.
    pub fn at(&self, t: u64) -> TraceRow {
        let step = u64::from(self.provenance.step_seconds.max(1));
        let t = t % self.span_seconds();
        let index = usize::try_from(t / step).unwrap_or(0);
        let next = (index + 1) % self.rows.len();
        let fraction = (t % step) as f64 / step as f64;
        let (a, b) = (self.rows[index], self.rows[next]);
        TraceRow {
            cpu_percent: a.cpu_percent + (b.cpu_percent - a.cpu_percent) * fraction,
            memory_percent: a.memory_percent + (b.memory_percent - a.memory_percent) * fraction,
        }
    }
}

fn alibaba_source() -> String {
    "Alibaba Cluster Trace Program, cluster-trace-v2018, via DataCenter-Traces-Datasets \
     (DOI 10.5281/zenodo.14564847)"
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance() -> TraceProvenance {
        TraceProvenance {
            name: "test".to_owned(),
            location: "inline".to_owned(),
            source: "test".to_owned(),
            license: "test".to_owned(),
            step_seconds: 10,
            rows: 0,
        }
    }

    #[test]
    fn the_embedded_day_is_a_full_day_of_ten_second_rows() {
        let trace = Trace::embedded().unwrap();
        assert_eq!(trace.rows.len(), 8641);
        assert_eq!(trace.provenance.license, "CC BY 4.0");
        assert!(trace.span_seconds() >= 86_400);
        let mean = trace.rows.iter().map(|r| r.cpu_percent).sum::<f64>() / trace.rows.len() as f64;
        assert!((30.0..40.0).contains(&mean), "mean CPU {mean}");
    }

    #[test]
    fn interpolates_between_rows_and_wraps() {
        let text = "cpu_util_percent,mem_util_percent\n10,50\n30,70\n";
        let trace = Trace::parse(text, provenance()).unwrap();
        assert_eq!(trace.at(5).cpu_percent, 20.0);
        assert_eq!(trace.at(10).memory_percent, 70.0);
        // Second 15 lies between the last row and the first again.
        assert_eq!(trace.at(15).cpu_percent, 20.0);
        assert_eq!(trace.at(20).cpu_percent, 10.0);
    }

    #[test]
    fn bad_rows_name_their_line() {
        let text = "cpu_util_percent,mem_util_percent\n10,50\nabc,70\n";
        let err = Trace::parse(text, provenance()).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("not a number"), "{err}");
        let text = "cpu_util_percent,mem_util_percent\n10,50\n101,70\n";
        let err = Trace::parse(text, provenance()).unwrap_err().to_string();
        assert!(err.contains("outside 0-100"), "{err}");
    }

    #[test]
    fn a_header_without_the_columns_is_refused() {
        let err = Trace::parse("cpu,mem\n1,2\n3,4\n", provenance())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no cpu_util_percent column"), "{err}");
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let err = Trace::from_file(Path::new("/nonexistent/trace.csv"), 10)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot read trace /nonexistent/trace.csv"),
            "{err}"
        );
    }
}
