//! The `synthetic` kind's language side: a token-streaming service with known latency,
//! for calibration and CI. Its runtime side is `src/workload/synthetic.rs`.

use kdl::KdlNode;
use serde::Serialize;

use super::{missing, Estimating, KindSpec, SetupEstimate};
use crate::dsl::decode::workload::read;
use crate::dsl::diag::{Code, Diagnostic};
use crate::dsl::model::*;
use crate::dsl::reader::{Ctx, NodeReader};
use crate::dsl::span::Spanned;
use crate::dsl::units::{Duration, Percent};

/// Latency distributions of the synthetic workload, all in nanoseconds.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "dist", rename_all = "lowercase")]
pub enum LatencyDist {
    Fixed { value: Duration },
    Uniform { min: Duration, max: Duration },
    Normal { mean: Duration, stddev: Duration },
    Lognormal { median: Duration, sigma: f64 },
    Pareto { scale: Duration, shape: f64 },
}

#[derive(Debug)]
pub struct Synthetic {
    pub latency: Option<Spanned<LatencyDist>>,
    pub cpu_work: Option<Spanned<Duration>>,
    pub error_probability: Option<Spanned<Percent>>,
    pub tokens: Option<(Spanned<u64>, Spanned<Duration>)>,
    /// At most this many requests in service at once; the rest wait their turn in arrival
    /// order (a server with N slots: its capacity is known in closed form).
    pub slots: Option<Spanned<u64>>,
}

pub const SYNTHETIC_NODES: &[&str] = &["latency", "cpu-work", "errors", "tokens", "slots"];

const DISTRIBUTIONS: &[&str] = &["fixed", "uniform", "normal", "lognormal", "pareto"];

pub(in crate::dsl) fn decode(cx: &mut Ctx, nodes: &[KdlNode]) -> Synthetic {
    let mut s = Synthetic { latency: None, cpu_work: None, error_probability: None, tokens: None, slots: None };
    for node in nodes {
        match node.name().value() {
            "latency" => s.latency = read(cx, node, latency),
            "cpu-work" => s.cpu_work = read(cx, node, |cx, r| r.req_arg(cx, 0, "a duration", "cpu-work \"1ms\"")),
            "errors" => {
                s.error_probability = read(cx, node, |cx, r| {
                    let p = r.req_prop::<Percent>(cx, "probability", "errors probability=\"1%\"")?;
                    if p.value.0 > 1.0 {
                        cx.error(
                            Code::OutOfRange,
                            p.span,
                            "a probability cannot exceed 100%",
                            "over 100%",
                            "use a value between 0% and 100%",
                        );
                    }
                    Some(p)
                })
            }
            "tokens" => {
                s.tokens = read(cx, node, |cx, r| {
                    let count = r.req_prop(cx, "count", "tokens count=64 gap=\"5ms\"");
                    let gap = r.req_prop(cx, "gap", "gap=\"5ms\"");
                    Some((count?, gap?))
                })
            }
            "slots" => {
                s.slots = read(cx, node, |cx, r| {
                    let n = r.req_arg::<u64>(cx, 0, "a count", "slots 4")?;
                    if n.value == 0 {
                        cx.error(
                            Code::OutOfRange,
                            n.span,
                            "a service needs at least one slot",
                            "zero",
                            "for example: slots 4",
                        );
                        return None;
                    }
                    Some(n)
                })
            }
            _ => cx.unknown_node(node, "a synthetic workload", SYNTHETIC_NODES),
        }
    }
    s
}

/// `latency "lognormal" median="20ms" sigma=0.5` and the other distributions.
fn latency(cx: &mut Ctx, r: &mut NodeReader) -> Option<Spanned<LatencyDist>> {
    let kind = r.req_arg::<String>(cx, 0, "a distribution", "latency \"lognormal\" median=\"20ms\" sigma=0.5")?;
    let mut d = |name: &'static str, ex: &str| r.req_prop::<Duration>(cx, name, ex).map(|v| v.value);
    let dist = match kind.value.as_str() {
        "fixed" => LatencyDist::Fixed { value: d("value", "value=\"10ms\"")? },
        "uniform" => {
            let (min, max) = (d("min", "min=\"5ms\""), d("max", "max=\"15ms\""));
            let (min, max) = (min?, max?);
            if min > max {
                cx.error(Code::InvalidRange, kind.span, "`min` is above `max`", "empty range", "swap min and max");
            }
            LatencyDist::Uniform { min, max }
        }
        "normal" => {
            let (mean, stddev) = (d("mean", "mean=\"10ms\""), d("stddev", "stddev=\"2ms\""));
            LatencyDist::Normal { mean: mean?, stddev: stddev? }
        }
        "lognormal" => {
            let median = d("median", "median=\"20ms\"");
            let sigma = positive(cx, r, "sigma", "sigma=0.5");
            LatencyDist::Lognormal { median: median?, sigma: sigma? }
        }
        "pareto" => {
            let scale = d("scale", "scale=\"5ms\"");
            let shape = positive(cx, r, "shape", "shape=2.5");
            LatencyDist::Pareto { scale: scale?, shape: shape? }
        }
        other => {
            let help = super::super::suggest::help_for(other, DISTRIBUTIONS, "distributions");
            cx.error(
                Code::UnknownValue,
                kind.span,
                format!("`{other}` is not a latency distribution"),
                "unknown distribution",
                help,
            );
            return None;
        }
    };
    Some(Spanned::new(dist, kind.span))
}

fn positive(cx: &mut Ctx, r: &mut NodeReader, name: &'static str, ex: &str) -> Option<f64> {
    let v = r.req_prop::<f64>(cx, name, ex)?;
    if v.value <= 0.0 {
        cx.error(
            Code::OutOfRange,
            v.span,
            format!("`{name}` must be greater than 0"),
            "not positive",
            format!("for example: {ex}"),
        );
        return None;
    }
    Some(v.value)
}

impl Synthetic {
    /// The mean time of a request: the latency's mean, the CPU work and the token stream.
    fn mean_s(&self) -> Option<f64> {
        let lat = match self.latency.as_ref()?.value {
            LatencyDist::Fixed { value } => value.as_secs_f64(),
            LatencyDist::Uniform { min, max } => (min.as_secs_f64() + max.as_secs_f64()) / 2.0,
            LatencyDist::Normal { mean, .. } => mean.as_secs_f64(),
            LatencyDist::Lognormal { median, sigma } => median.as_secs_f64() * (sigma * sigma / 2.0).exp(),
            LatencyDist::Pareto { scale, shape } if shape > 1.0 => scale.as_secs_f64() * shape / (shape - 1.0),
            LatencyDist::Pareto { .. } => return None,
        };
        let cpu = self.cpu_work.as_ref().map(|c| c.value.as_secs_f64()).unwrap_or(0.0);
        let stream = self
            .tokens
            .as_ref()
            .map(|(n, gap)| n.value.saturating_sub(1) as f64 * gap.value.as_secs_f64())
            .unwrap_or(0.0);
        Some(lat + cpu + stream).filter(|t| *t > 0.0)
    }
}

impl KindSpec for Synthetic {
    fn check(&self, w: &Workload, diags: &mut Vec<Diagnostic>) {
        if self.latency.is_none() {
            missing(diags, w, "a latency", "latency \"fixed\" value=\"10ms\"")
        }
    }

    fn summary(&self) -> String {
        let trim = crate::dsl::units::trim_float;
        let mut out = match self.latency.as_ref().map(|l| l.value) {
            Some(LatencyDist::Fixed { value }) => format!("latency fixed {value}"),
            Some(LatencyDist::Uniform { min, max }) => format!("latency uniform {min}..{max}"),
            Some(LatencyDist::Normal { mean, stddev }) => format!("latency normal {mean} ± {stddev}"),
            Some(LatencyDist::Lognormal { median, sigma }) => {
                format!("latency lognormal median {median}, sigma {}", trim(sigma))
            }
            Some(LatencyDist::Pareto { scale, shape }) => {
                format!("latency pareto scale {scale}, shape {}", trim(shape))
            }
            None => "no latency".into(),
        };
        if let Some(c) = &self.cpu_work {
            out += &format!("; cpu work {}", c.value);
        }
        if let Some(e) = &self.error_probability {
            out += &format!("; errors {}", e.value);
        }
        if let Some((n, gap)) = &self.tokens {
            out += &format!("; {} tokens every {}", n.value, gap.value);
        }
        if let Some(n) = &self.slots {
            out += &format!("; {} slots", n.value);
        }
        out
    }

    fn service_time(&self, _: &Estimating) -> Option<(f64, String)> {
        self.mean_s().map(|t| (t, "the declared latency".into()))
    }

    fn tokens_per_request(&self) -> Option<f64> {
        self.tokens.as_ref().map(|(n, _)| n.value as f64)
    }

    fn setup_steps(&self, _: &Estimating) -> Vec<SetupEstimate> {
        vec![]
    }

    /// A synthetic service waits unless it declares `cpu-work`.
    fn cpu_demand(&self, workers: usize, cores: usize, _: bool) -> Option<usize> {
        self.cpu_work.as_ref().is_some_and(|c| c.value.0 > 0).then(|| workers.clamp(1, cores))
    }

    /// No model server to scrape.
    fn server_metrics(&self) -> Option<super::ServerMetrics> {
        None
    }
}
