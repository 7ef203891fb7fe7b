//! Split and fleet runs without a coordinator: a shard's identity (`--shard I/N`, or read from
//! the environment a Kubernetes Indexed Job or a Slurm array gives each task), the plan a
//! shard runs (its 1/N of every drive's load), and a fleet member's node identity. Each
//! process writes one self-describing file; `benchctl merge` (see [`crate::merge`]) puts
//! them together. docs/distributed.md is the user's guide.

use serde::Serialize;

use crate::dsl::model::{LoadShape, Stage, Target};
use crate::dsl::units::Rate;
pub use crate::partition::{Shard, ShardError};
use crate::plan::Plan;

/// Why the scheduler's variables do not name a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvError {
    NotWhole {
        var: &'static str,
        value: String,
    },
    /// One variable of a pair is set without the other (the message says which and why).
    Missing(&'static str),
    BelowMin {
        task: u64,
        min: u64,
    },
    Shard(ShardError),
    /// A Slurm array whose task ids do not run from its minimum without gaps (its count).
    ArrayGap(ShardError, u64),
    NoneFound,
}

impl std::fmt::Display for EnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvError::NotWhole { var, value } => write!(f, "the environment variable {var}=`{value}` is not a whole number"),
            EnvError::Missing(what) => f.write_str(what),
            EnvError::BelowMin { task, min } => write!(f, "SLURM_ARRAY_TASK_ID={task} is below SLURM_ARRAY_TASK_MIN={min}"),
            EnvError::Shard(e) => e.fmt(f),
            EnvError::ArrayGap(e, count) => write!(
                f,
                "{e}: the array's task ids must run without gaps from SLURM_ARRAY_TASK_MIN (e.g. --array=0-{})",
                count.saturating_sub(1)
            ),
            EnvError::NoneFound => f.write_str("--shard-from-env found none of JOB_COMPLETION_INDEX (Kubernetes Indexed Job), SLURM_ARRAY_TASK_ID (Slurm job array) or SLURM_PROCID (srun)\n  help: run inside one of those, or pass --shard INDEX/COUNT"),
        }
    }
}

impl std::error::Error for EnvError {}

/// Where a shard's identity came from (recorded in the shard file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromEnv {
    pub shard: Shard,
    /// The variables read, e.g. `JOB_COMPLETION_INDEX, BENCHCTL_SHARD_COUNT`.
    pub source: String,
    /// A run id the scheduler gives every task of the job, when it gives one.
    pub run_id: Option<String>,
}

impl FromEnv {
    /// The shard's identity from the variables a scheduler sets, looked up through `var`:
    /// a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` (with the count from
    /// `BENCHCTL_SHARD_COUNT`, which the Job's manifest sets to its `completions`), a Slurm
    /// job array's `SLURM_ARRAY_TASK_ID` (less `SLURM_ARRAY_TASK_MIN`) and
    /// `SLURM_ARRAY_TASK_COUNT`, or a Slurm step's `SLURM_PROCID` and `SLURM_NTASKS`.
    pub fn read(var: &dyn Fn(&str) -> Option<String>) -> Result<FromEnv, EnvError> {
        let num = |k: &'static str| -> Result<Option<u64>, EnvError> {
            match var(k) {
                None => Ok(None),
                Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| EnvError::NotWhole { var: k, value: v }),
            }
        };
        let run_id = var("BENCHCTL_RUN_ID").filter(|s| !s.trim().is_empty());
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let count = num("BENCHCTL_SHARD_COUNT")?.ok_or(EnvError::Missing(
                "JOB_COMPLETION_INDEX is set but BENCHCTL_SHARD_COUNT is not: set it to the Job's `completions` in the pod template (deploy/kubernetes/split-job.yaml does)",
            ))?;
            return Ok(FromEnv {
                shard: Shard::new(index, count).map_err(EnvError::Shard)?,
                source: "JOB_COMPLETION_INDEX, BENCHCTL_SHARD_COUNT".into(),
                run_id,
            });
        }
        if let Some(task) = num("SLURM_ARRAY_TASK_ID")? {
            let count = num("SLURM_ARRAY_TASK_COUNT")?.ok_or(EnvError::Missing(
                "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not (Slurm sets both for a job array)",
            ))?;
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let index = task.checked_sub(min).ok_or(EnvError::BelowMin { task, min })?;
            let shard = Shard::new(index, count).map_err(|e| EnvError::ArrayGap(e, count))?;
            let run_id = run_id.or_else(|| var("SLURM_ARRAY_JOB_ID"));
            return Ok(FromEnv {
                shard,
                source: "SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT".into(),
                run_id,
            });
        }
        if let Some(index) = num("SLURM_PROCID")? {
            let count = num("SLURM_NTASKS")?.ok_or(EnvError::Missing("SLURM_PROCID is set but SLURM_NTASKS is not"))?;
            let run_id = run_id.or_else(|| var("SLURM_JOB_ID"));
            return Ok(FromEnv {
                shard: Shard::new(index, count).map_err(EnvError::Shard)?,
                source: "SLURM_PROCID, SLURM_NTASKS".into(),
                run_id,
            });
        }
        Err(EnvError::NoneFound)
    }
}

/// What one drive of the plan became in a shard (recorded in the shard file).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct DrivePart {
    pub phase: String,
    pub workload: String,
    /// The drive as declared, and as this shard runs it.
    pub declared: String,
    pub runs: String,
    /// This shard's share of the drive's load (rate, concurrency or request budget).
    pub share: f64,
}

fn shape_part(s: &Shard, shape: &LoadShape) -> (LoadShape, f64) {
    let rate_share = 1.0 / s.count as f64;
    let conc = |c: u64| if c == 0 { 0.0 } else { s.part(c) as f64 / c as f64 };
    match shape {
        LoadShape::Closed { concurrency } => {
            (LoadShape::Closed { concurrency: s.part(*concurrency) }, conc(*concurrency))
        }
        LoadShape::Open { rate, arrivals } => {
            (LoadShape::Open { rate: s.rate(*rate), arrivals: *arrivals }, rate_share)
        }
        LoadShape::RampRate { from, to, arrivals } => {
            (LoadShape::RampRate { from: s.rate(*from), to: s.rate(*to), arrivals: *arrivals }, rate_share)
        }
        LoadShape::RampConcurrency { from, to } => {
            (LoadShape::RampConcurrency { from: s.part(*from), to: s.part(*to) }, conc((*from).max(*to)))
        }
        LoadShape::Spike { base, peak, every, hold, arrivals } => (
            LoadShape::Spike {
                base: s.rate(*base),
                peak: s.rate(*peak),
                every: *every,
                hold: *hold,
                arrivals: *arrivals,
            },
            rate_share,
        ),
        LoadShape::Stages { stages, arrivals } => {
            let mut shares = vec![];
            let stages = stages
                .iter()
                .map(|st| {
                    let target = match st.target {
                        Target::Rate(r) => {
                            shares.push(rate_share);
                            Target::Rate(s.rate(r))
                        }
                        Target::Concurrency(c) => {
                            shares.push(conc(c));
                            Target::Concurrency(s.part(c))
                        }
                    };
                    Stage { duration: st.duration, target }
                })
                .collect();
            let share = if shares.is_empty() { rate_share } else { shares.iter().sum::<f64>() / shares.len() as f64 };
            (LoadShape::Stages { stages, arrivals: *arrivals }, share)
        }
    }
}

fn describe(shape: &LoadShape, requests: Option<u64>, max_in_flight: Option<u64>) -> String {
    let r = |r: &Rate| format!("{:.4}/s", r.0);
    let mut s = match shape {
        LoadShape::Closed { concurrency } => format!("concurrency={concurrency}"),
        LoadShape::Open { rate, .. } => format!("rate={}", r(rate)),
        LoadShape::RampRate { from, to, .. } => format!("ramp rate={}..{}", r(from), r(to)),
        LoadShape::RampConcurrency { from, to } => format!("ramp concurrency={from}..{to}"),
        LoadShape::Spike { base, peak, .. } => format!("spike base={} peak={}", r(base), r(peak)),
        LoadShape::Stages { stages, .. } => {
            let parts: Vec<String> = stages
                .iter()
                .map(|st| match st.target {
                    Target::Rate(x) => r(&x),
                    Target::Concurrency(c) => format!("concurrency={c}"),
                })
                .collect();
            format!("stages {}", parts.join(", "))
        }
    };
    if let Some(n) = requests {
        s.push_str(&format!(" requests={n}"));
    }
    if let Some(m) = max_in_flight {
        s.push_str(&format!(" max-in-flight={m}"));
    }
    s
}

/// A plan with a breaking-point search, which a split run cannot share out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchNotSplit {
    pub phase: String,
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for SearchNotSplit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "phase `{}` ({}:{}) holds a breaking-point search, which a split run cannot share out: each shard would stop at its own level\n  help: run the search on one generator, or replace it with `stages` for the split run",
            self.phase, self.file, self.line
        )
    }
}

impl std::error::Error for SearchNotSplit {}

/// Rewrites `plan` into shard `s`'s part: every drive's rate divided by N, its concurrency
/// and request budget split into whole parts that add up to the declared ones, an open
/// loop's in-flight cap split (at least 1), and the drives' seed mixed with the index.
/// A breaking-point search cannot be split (each shard would search on its own slice and
/// stop at its own level), so a plan with one is refused.
pub fn apply(plan: &mut Plan, s: &Shard) -> Result<Vec<DrivePart>, SearchNotSplit> {
    if let Some(p) = plan.phases.iter().find(|p| p.search.is_some()) {
        return Err(SearchNotSplit { phase: p.name.clone(), file: p.origin.file.clone(), line: p.origin.line });
    }
    plan.seed = s.seed(plan.seed);
    let mut parts = vec![];
    for phase in &mut plan.phases {
        for d in &mut phase.drives {
            let declared = describe(&d.shape, d.requests, d.max_in_flight);
            let (shape, mut share) = shape_part(s, &d.shape);
            d.shape = shape;
            if let Some(n) = d.requests {
                d.requests = Some(s.part(n));
                share = if n == 0 { 0.0 } else { s.part(n) as f64 / n as f64 };
            }
            d.max_in_flight = d.max_in_flight.map(|m| m.div_ceil(s.count).max(1));
            d.expected_requests = d.expected_requests.map(|n| (n as f64 * share).round() as u64);
            parts.push(DrivePart {
                phase: phase.name.clone(),
                workload: d.workload.clone(),
                runs: describe(&d.shape, d.requests, d.max_in_flight),
                declared,
                share,
            });
        }
    }
    Ok(parts)
}

/// A fleet member's identity: the node (`NODE_NAME` from Kubernetes' downward API,
/// `SLURMD_NODENAME`, else the host name) and where the name came from.
pub fn node_name(var: &dyn Fn(&str) -> Option<String>) -> (String, &'static str) {
    for k in ["NODE_NAME", "SLURMD_NODENAME"] {
        if let Some(v) = var(k).filter(|v| !v.trim().is_empty()) {
            return (v.trim().to_string(), k);
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| var("HOSTNAME"))
        .unwrap_or_else(|| "unknown-host".into());
    (host, "hostname")
}

/// SHA-256 (hex) of what makes two processes run the same scenario: the sources' hash,
/// the resolved parameters, the seed and the repetitions. Shards and fleet members are
/// merged only when theirs agree.
pub fn scenario_hash(sources_sha256: &str, plan: &Plan) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(sources_sha256.as_bytes());
    for p in &plan.params {
        h.update(format!("\0{}={}", p.name, p.value).as_bytes());
    }
    h.update(format!("\0seed={}\0repeat={}", plan.seed, plan.repeat).as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A text that is not an RFC 3339 time (`no_zone`: it lacks only the zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotATime {
    pub text: String,
    pub no_zone: bool,
}

impl std::fmt::Display for NotATime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` is not an RFC 3339 time such as 2026-12-03T10:00:00Z", self.text)?;
        if self.no_zone {
            f.write_str(": it needs a zone, `Z` or `+HH:MM`")?;
        }
        Ok(())
    }
}

impl std::error::Error for NotATime {}

/// Parses an RFC 3339 time (`2026-12-03T10:00:00Z`, `...T10:00:00.5+01:00`) as seconds
/// since the Unix epoch.
pub fn parse_rfc3339(s: &str) -> Result<f64, NotATime> {
    let bad = || NotATime { text: s.to_string(), no_zone: false };
    let b = s.trim().as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let n = |r: std::ops::Range<usize>| -> Result<i64, NotATime> {
        std::str::from_utf8(&b[r]).ok().and_then(|t| t.parse::<i64>().ok()).ok_or_else(bad)
    };
    let (y, mo, d, h, mi, sec) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut frac = 0.0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        frac =
            format!("0.{}", std::str::from_utf8(&b[start..i]).map_err(|_| bad())?).parse::<f64>().map_err(|_| bad())?;
    }
    let offset = match b.get(i..) {
        Some([b'Z' | b'z']) => 0,
        Some([sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]) => {
            let hh = (h1 - b'0') as i64 * 10 + (h2 - b'0') as i64;
            let mm = (m1 - b'0') as i64 * 10 + (m2 - b'0') as i64;
            if ![h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) || hh > 23 || mm > 59 {
                return Err(bad());
            }
            let o = hh * 3600 + mm * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(NotATime { text: s.to_string(), no_zone: true }),
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (yy, m) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok((days * 86_400 + h * 3600 + mi * 60 + sec - offset) as f64 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let v: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| v.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn parses_and_refuses_shards() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(Shard::parse("4/4").unwrap_err().to_string().contains("not below"));
        assert!(Shard::parse("0/0").unwrap_err().to_string().contains("at least 1"));
        assert!(Shard::parse("1").unwrap_err().to_string().contains("INDEX/COUNT"));
        assert!(Shard::parse("a/3").unwrap_err().to_string().contains("whole number"));
    }

    #[test]
    fn parts_add_up() {
        for n in [0u64, 1, 5, 7, 64, 1001] {
            for count in [1u64, 2, 3, 8] {
                let sum: u64 = (0..count).map(|i| Shard { index: i, count }.part(n)).sum();
                assert_eq!(sum, n, "{n} over {count}");
            }
        }
        let s = Shard { index: 1, count: 3 };
        assert_eq!(s.partition((0..10).collect::<Vec<_>>()), vec![1, 4, 7]);
        assert_eq!(Shard { index: 0, count: 1 }.seed(42), 42);
        assert_ne!(Shard { index: 0, count: 2 }.seed(42), Shard { index: 1, count: 2 }.seed(42));
    }

    #[test]
    fn identity_from_schedulers() {
        let k8s = FromEnv::read(&env(&[("JOB_COMPLETION_INDEX", "3"), ("BENCHCTL_SHARD_COUNT", "8")])).unwrap();
        assert_eq!(k8s.shard, Shard { index: 3, count: 8 });
        assert!(FromEnv::read(&env(&[("JOB_COMPLETION_INDEX", "3")]))
            .unwrap_err()
            .to_string()
            .contains("BENCHCTL_SHARD_COUNT"));
        let array = FromEnv::read(&env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "6"),
            ("SLURM_ARRAY_JOB_ID", "991"),
        ]))
        .unwrap();
        assert_eq!((array.shard, array.run_id.as_deref()), (Shard { index: 4, count: 6 }, Some("991")));
        let step = FromEnv::read(&env(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "2"), ("SLURM_JOB_ID", "7")])).unwrap();
        assert_eq!(step.shard, Shard { index: 0, count: 2 });
        assert!(FromEnv::read(&env(&[])).unwrap_err().to_string().contains("found none"));
        assert!(FromEnv::read(&env(&[("SLURM_PROCID", "x"), ("SLURM_NTASKS", "2")]))
            .unwrap_err()
            .to_string()
            .contains("whole number"));
        assert_eq!(node_name(&env(&[("SLURMD_NODENAME", "gpu07")])), ("gpu07".into(), "SLURMD_NODENAME"));
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0.0));
        assert_eq!(parse_rfc3339("2026-11-28T04:15:00Z"), Ok(1_795_839_300.0));
        assert_eq!(parse_rfc3339("2026-11-28T05:15:00.25+01:00"), Ok(1_795_839_300.25));
        assert!(parse_rfc3339("2026-11-28T04:15:00").unwrap_err().to_string().contains("zone"));
        assert!(parse_rfc3339("yesterday").is_err());
        assert!(parse_rfc3339("2026-13-28T04:15:00Z").is_err());
    }
}
