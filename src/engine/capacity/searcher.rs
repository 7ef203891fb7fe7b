//! The search logic, free of the engine: which load to try next, the working and settled
//! brackets, the monotone fit and the look times of a step.

use super::Verdict;
use crate::dsl::model::SearchOver;
use crate::plan::SearchSpec;

/// One tried load as the search logic sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tried {
    pub load: f64,
    pub verdict: Verdict,
    pub margin: Option<f64>,
}

/// Judges the pooled samples of some steps (indices into the tried steps) with the run's
/// confidence shared among `tests` such pools (Bonferroni); `Undecided` where the evidence
/// does not settle it or the SLOs have no rule to pool.
pub type Pool<'a> = &'a dyn Fn(&[usize], usize) -> Verdict;

/// Why a step runs: growing the load to a bracket (judged for a third of the step length:
/// its verdict only has to lean), narrowing the bracket, or confirming an end of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Grow,
    Narrow,
    Confirm,
}

/// The search logic: which load to try next, and the answer from the steps so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Searcher {
    pub lo: f64,
    pub hi: f64,
    /// Concurrency: loads are whole numbers and the answer is exact when settled.
    pub integer: bool,
    pub factor: f64,
    pub geometric: bool,
    pub max_steps: u32,
    pub precision: f64,
}

/// The answer of [`Searcher::answer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answer {
    pub capacity: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub exact: bool,
}

impl Searcher {
    pub fn of(spec: &SearchSpec) -> Searcher {
        let integer = spec.over == SearchOver::Concurrency;
        Searcher {
            lo: if integer { spec.lo.round().max(1.0) } else { spec.lo },
            hi: if integer { spec.hi.round().max(1.0) } else { spec.hi },
            integer,
            factor: spec.factor,
            geometric: spec.geometric,
            max_steps: spec.max_steps,
            precision: spec.precision,
        }
    }

    /// The working bracket: the highest load that leans to holding below the lowest that
    /// leans to missing. A load with a settled step leans its latest settled verdict's way;
    /// one without, by the monotone fit of every step's margin, which pools the noise of
    /// steps at the same load and of steps that disagree with the loads around them.
    fn working(&self, tried: &[Tried]) -> (Option<f64>, Option<f64>) {
        let fit = isotonic(&points(tried));
        let leans_holds = |x: f64| match tried.iter().rev().find(|t| t.load == x && t.verdict != Verdict::Undecided) {
            Some(t) => t.verdict == Verdict::Holds,
            None => fit.iter().find(|p| p.0 == x).is_some_and(|p| p.1 < 1.0),
        };
        let loads = distinct(tried, |x| !blank(tried, x));
        let h = loads.iter().copied().find(|&x| !leans_holds(x));
        let l = loads.iter().copied().filter(|&x| leans_holds(x) && h.is_none_or(|h| x < h)).reduce(f64::max);
        (l, h)
    }

    /// The settled bracket: the highest load that held below the lowest that missed. A load
    /// holds when the samples of the steps at loads from it up to some higher load (itself
    /// alone included), pooled, settle so: the SLO's statistic does not improve with load,
    /// so a mixture of higher loads is no better than the lowest of them. A load misses
    /// when a pool of the steps from some lower load up to it settles so. Pools stay on
    /// their side of the working bracket; the run's confidence is shared among all the
    /// pools of a side.
    fn settled(&self, tried: &[Tried], pool: Pool) -> (Option<f64>, Option<f64>) {
        let (wl, wh) = self.working(tried);
        let within = |a: f64, b: f64| -> Vec<usize> {
            (0..tried.len()).filter(|&i| tried[i].load >= a && tried[i].load <= b).collect()
        };
        let single_h = tried.iter().filter(|t| t.verdict == Verdict::Missed).map(|t| t.load).reduce(f64::min);
        let pooled_h = wh.and_then(|wh| {
            let up = distinct(tried, |x| x >= wh);
            let tests = up.len() * (up.len() + 1) / 2;
            // The lowest top of a pool that misses.
            (0..up.len())
                .find_map(|j| (0..=j).any(|i| pool(&within(up[i], up[j]), tests) == Verdict::Missed).then(|| up[j]))
        });
        let h = [single_h, pooled_h].into_iter().flatten().reduce(f64::min);
        let below = |x: f64| h.is_none_or(|h| x < h);
        let single_l =
            (tried.iter()).filter(|t| t.verdict == Verdict::Holds && below(t.load)).map(|t| t.load).reduce(f64::max);
        let pooled_l = wl.filter(|l| below(*l)).and_then(|wl| {
            let down = distinct(tried, |x| x <= wl);
            let (n, tests) = (down.len(), down.len() * (down.len() + 1) / 2);
            // The highest bottom of a pool that holds.
            (0..n)
                .rev()
                .find_map(|i| (i..n).any(|j| pool(&within(down[i], down[j]), tests) == Verdict::Holds).then(|| down[i]))
        });
        ([single_l, pooled_l].into_iter().flatten().reduce(f64::max), h)
    }

    /// The next load to try and why, or why the search is over.
    pub fn next(&self, tried: &[Tried], pool: Pool) -> Result<(f64, Stage), &'static str> {
        if tried.is_empty() {
            return Ok((self.lo, Stage::Grow));
        }
        if tried.len() as u32 >= self.max_steps {
            return Err("max-steps");
        }
        // A step that saw nothing (no request finished) tells nothing: run it again, for
        // the whole step; a second blank step at the load leans to missing.
        if let Some(t) = tried.last().filter(|t| blank(tried, t.load)) {
            return Ok((t.load, Stage::Confirm));
        }
        let end = |why| self.confirm(tried, pool, why);
        match self.working(tried) {
            (None, _) => end("lowest load missed"),
            (Some(l), None) if l >= self.hi => end("range top held"),
            (Some(l), None) => Ok((self.grow(l), Stage::Grow)),
            (Some(l), Some(h)) if self.narrow(l, h) => end("bracketed"),
            (Some(l), Some(h)) => Ok((self.inside(l, h, tried), Stage::Narrow)),
        }
    }

    /// Before the search ends: an end of the working bracket that the evidence does not
    /// settle (no step of its own, no pool, or for a rate, no settled load within the
    /// precision of it) is run once more for the whole step length, so the interval can
    /// rest on it.
    fn confirm(&self, tried: &[Tried], pool: Pool, why: &'static str) -> Result<(f64, Stage), &'static str> {
        let (wl, wh) = self.working(tried);
        let (sl, sh) = self.settled(tried, pool);
        let slack = if self.integer { 1.0 } else { 1.0 + self.precision };
        let open_low = wl.filter(|l| sl.is_none_or(|s| s * slack < *l));
        let open_high = wh.filter(|h| sh.is_none_or(|s| s > *h * slack));
        for x in [open_low, open_high].into_iter().flatten() {
            if tried.iter().filter(|t| t.load == x).count() < 2 {
                return Ok((x, Stage::Confirm));
            }
        }
        Err(why)
    }

    fn grow(&self, l: f64) -> f64 {
        let step = (self.hi - self.lo) / (self.max_steps as f64 / 2.0).max(1.0);
        let x = if self.geometric { l * self.factor } else { l + step };
        let x = if self.integer { x.ceil().max(l + 1.0) } else { x };
        x.min(self.hi)
    }

    fn narrow(&self, l: f64, h: f64) -> bool {
        if self.integer {
            h - l <= 1.0
        } else {
            h / l <= 1.0 + self.precision
        }
    }

    /// A load strictly inside `(l, h)`. Where the last step cut the bracket by at least
    /// half, just past the point where the monotone fit crosses the bound, on the side of
    /// the larger part, so that the next step can close the bracket to the precision;
    /// otherwise the middle (the fit is not helping).
    fn inside(&self, l: f64, h: f64, tried: &[Tried]) -> f64 {
        let before = self.working(&tried[..tried.len() - 1]);
        let poor = matches!(before, (Some(l0), Some(h0)) if (h - l) > 0.5 * (h0 - l0));
        let c = crossing(tried).filter(|c| *c > l && *c < h && !poor);
        let upward = |c: f64| c - l <= h - c;
        let x = match c {
            None => (l + h) / 2.0,
            Some(c) if self.integer && upward(c) => c.floor() + 1.0,
            Some(c) if self.integer => c.floor(),
            Some(c) if upward(c) => c * (1.0 + 0.45 * self.precision),
            Some(c) => c * (1.0 - 0.45 * self.precision),
        };
        if self.integer {
            x.round().clamp(l + 1.0, h - 1.0)
        } else {
            let edge = 0.01 * (h - l);
            x.clamp(l + edge, h - edge)
        }
    }

    /// The capacity and its interval from the steps so far.
    pub fn answer(&self, tried: &[Tried], pool: Pool) -> Answer {
        let (l, h) = self.working(tried);
        let (sl, sh) = self.settled(tried, pool);
        let capacity = match (l, h) {
            (None, _) => None,
            (Some(l), _) if self.integer => Some(l),
            (Some(l), None) => Some(l),
            (Some(l), Some(h)) => Some(crossing(tried).unwrap_or(l).clamp(l, h)),
        };
        let high = sh.map(|h| if self.integer { h - 1.0 } else { h });
        let exact = self.integer && sl.is_some() && sl == high && capacity == sl;
        Answer { capacity, low: sl, high, exact }
    }
}

/// Where the isotonic (non-decreasing) least-squares fit of margin against load, joined by
/// straight lines, first reaches 1.
pub fn crossing(tried: &[Tried]) -> Option<f64> {
    let fit = isotonic(&points(tried));
    let above = fit.iter().position(|&(_, m)| m >= 1.0)?;
    if above == 0 {
        return None;
    }
    let ((x0, m0), (x1, m1)) = (fit[above - 1], fit[above]);
    Some(if m1 > m0 { x0 + (1.0 - m0) * (x1 - x0) / (m1 - m0) } else { x0 })
}

/// The loads tried that `keep` keeps, ascending, each once.
fn distinct(tried: &[Tried], keep: impl Fn(f64) -> bool) -> Vec<f64> {
    let mut v: Vec<f64> = tried.iter().map(|t| t.load).filter(|x| keep(*x)).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

/// Whether the load's only step saw nothing to judge: no margin, no verdict.
fn blank(tried: &[Tried], x: f64) -> bool {
    let mut here = tried.iter().filter(|t| t.load == x);
    let first = here.next();
    here.next().is_none() && first.is_some_and(|t| t.margin.is_none() && t.verdict == Verdict::Undecided)
}

/// Every step's (load, margin), by load.
fn points(tried: &[Tried]) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> =
        tried.iter().filter_map(|t| t.margin.filter(|m| m.is_finite()).map(|m| (t.load, m))).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

/// Pool-adjacent-violators: the non-decreasing sequence nearest to the points' values
/// (least squares), one value per load. Points at the same load are averaged first and
/// weigh by their number.
pub fn isotonic(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    // Blocks of (loads in the block, sum of values, number of points).
    let mut blocks: Vec<(Vec<f64>, f64, f64)> = vec![];
    for &(x, m) in pts {
        match blocks.last_mut() {
            Some(last) if last.0.len() == 1 && last.0[0] == x => {
                last.1 += m;
                last.2 += 1.0;
            }
            _ => blocks.push((vec![x], m, 1.0)),
        }
    }
    let mut fit: Vec<(Vec<f64>, f64, f64)> = vec![];
    for b in blocks {
        fit.push(b);
        while fit.len() > 1 {
            let n = fit.len();
            if fit[n - 2].1 / fit[n - 2].2 <= fit[n - 1].1 / fit[n - 1].2 {
                break;
            }
            let b = fit.pop().expect("two blocks");
            let a = fit.last_mut().expect("two blocks");
            a.0.extend(b.0);
            a.1 += b.1;
            a.2 += b.2;
        }
    }
    fit.into_iter().flat_map(|(xs, sum, n)| xs.into_iter().map(move |x| (x, sum / n))).collect()
}

pub use crate::plan::run::{looks, BATCH_S};

#[cfg(test)]
mod tests {
    use super::*;

    fn searcher(lo: f64, hi: f64, integer: bool) -> Searcher {
        Searcher { lo, hi, integer, factor: 2.0, geometric: true, max_steps: 30, precision: 0.05 }
    }

    /// Runs the search against an oracle that gives each load's verdict and margin.
    fn run(s: &Searcher, oracle: impl Fn(f64) -> (Verdict, f64)) -> (Vec<Tried>, &'static str) {
        let mut tried = vec![];
        loop {
            match s.next(&tried, &none) {
                Ok((x, stage)) => {
                    let again = tried.iter().any(|t: &Tried| t.load == x);
                    assert_eq!(again, stage == Stage::Confirm, "load {x} at {stage:?}: {tried:?}");
                    let (verdict, m) = oracle(x);
                    tried.push(Tried { load: x, verdict, margin: Some(m) });
                }
                Err(why) => return (tried, why),
            }
        }
    }

    /// No pool settles anything.
    fn none(_: &[usize], _: usize) -> Verdict {
        Verdict::Undecided
    }

    fn settled(capacity: f64) -> impl Fn(f64) -> (Verdict, f64) {
        move |x| {
            let m = if x <= capacity { 0.8 } else { 1.0 + (x - capacity) / capacity };
            (if m < 1.0 { Verdict::Holds } else { Verdict::Missed }, m)
        }
    }

    #[test]
    fn a_concurrency_search_is_exact_for_every_capacity_in_range() {
        let s = searcher(1.0, 64.0, true);
        for c in 1..64 {
            let (tried, why) = run(&s, settled(c as f64));
            let a = s.answer(&tried, &none);
            assert_eq!(
                (a.capacity, a.low, a.high, a.exact),
                (Some(c as f64), Some(c as f64), Some(c as f64), true),
                "c = {c}: {tried:?}"
            );
            assert_eq!(why, "bracketed");
            // Bracketing takes about log2(c) steps; narrowing about log2 of the bracket.
            assert!(tried.len() <= 14, "c = {c}: {} steps", tried.len());
        }
    }

    #[test]
    fn the_ends_of_the_range() {
        let s = searcher(2.0, 16.0, true);
        let (tried, why) = run(&s, settled(100.0));
        assert_eq!(
            (why, s.answer(&tried, &none).capacity, s.answer(&tried, &none).high),
            ("range top held", Some(16.0), None)
        );
        let (tried, why) = run(&s, settled(1.0));
        let a = s.answer(&tried, &none);
        assert_eq!((why, a.capacity, a.low, a.high), ("lowest load missed", None, None, Some(1.0)));
    }

    #[test]
    fn a_rate_search_brackets_the_crossing_within_its_precision() {
        let s = searcher(1.0, 1000.0, false);
        // Margin grows linearly with load and crosses 1 at 37.3/s.
        let (tried, why) = run(&s, |x| {
            let m = x / 37.3;
            (if m < 1.0 { Verdict::Holds } else { Verdict::Missed }, m)
        });
        let a = s.answer(&tried, &none);
        assert_eq!(why, "bracketed");
        let (lo, hi) = (a.low.unwrap(), a.high.unwrap());
        assert!(lo <= 37.3 && 37.3 <= hi && hi / lo <= 1.05, "{lo}..{hi}");
        // The fit is exact for a linear margin.
        assert!((a.capacity.unwrap() - 37.3).abs() < 1e-6, "{a:?}");
        assert!(tried.len() <= 9, "{} steps", tried.len());
    }

    #[test]
    fn undecided_steps_steer_the_search_but_do_not_bound_the_interval() {
        let s = searcher(1.0, 64.0, true);
        // Capacity 5, but the step at 6 cannot be settled (its estimate is just over).
        let (tried, _) = run(&s, |x| match x as u32 {
            6 => (Verdict::Undecided, 1.01),
            _ => settled(5.0)(x),
        });
        let a = s.answer(&tried, &none);
        assert_eq!((a.capacity, a.low), (Some(5.0), Some(5.0)));
        assert!(a.high.unwrap() >= 6.0 && !a.exact, "{a:?}");
    }

    #[test]
    fn an_undecided_end_of_the_bracket_is_run_again() {
        let s = searcher(1.0, 64.0, true);
        // Capacity 4; the first step at 4 (growing, short) cannot settle, the second can.
        let seen = std::cell::Cell::new(0);
        let (tried, why) = run(&s, |x| match x as u32 {
            4 => {
                seen.set(seen.get() + 1);
                if seen.get() == 1 {
                    (Verdict::Undecided, 0.9)
                } else {
                    (Verdict::Holds, 0.9)
                }
            }
            _ => settled(4.0)(x),
        });
        assert_eq!((seen.get(), why), (2, "bracketed"));
        let a = s.answer(&tried, &none);
        assert_eq!((a.capacity, a.low, a.high, a.exact), (Some(4.0), Some(4.0), Some(4.0), true), "{tried:?}");
        // A confirmation that misses moves the bracket down.
        let (tried, _) = run(&s, |x| match x as u32 {
            4 if tried_once(x) => (Verdict::Missed, 1.1),
            4 => (Verdict::Undecided, 0.95),
            _ => settled(3.0)(x),
        });
        assert_eq!(s.answer(&tried, &none).capacity, Some(3.0), "{tried:?}");
    }

    #[test]
    fn pooled_steps_settle_the_interval_that_no_single_step_does() {
        let s = searcher(1.0, 1000.0, false);
        // No step settles on its own; margin crosses 1 at 37.3/s.
        let oracle = |x: f64| (Verdict::Undecided, x / 37.3);
        let (tried, _) = run(&s, oracle);
        let a = s.answer(&tried, &none);
        assert_eq!((a.low, a.high), (None, None), "no evidence, no interval");
        // A pool settles when it holds two or more steps (each too short alone) whose mean
        // margin is on one side by 1 %.
        let asked = std::cell::RefCell::new(vec![]);
        let steps: std::cell::RefCell<Vec<Tried>> = std::cell::RefCell::new(vec![]);
        let pool = |idx: &[usize], tests: usize| {
            asked.borrow_mut().push((idx.to_vec(), tests));
            let t = steps.borrow();
            let m = idx.iter().map(|&i: &usize| t[i].margin.unwrap()).sum::<f64>() / idx.len() as f64;
            match m {
                _ if idx.len() < 2 => Verdict::Undecided,
                m if m < 0.99 => Verdict::Holds,
                m if m > 1.01 => Verdict::Missed,
                _ => Verdict::Undecided,
            }
        };
        let why = loop {
            let next = s.next(&steps.borrow(), &pool);
            match next {
                Ok((x, _)) => {
                    steps.borrow_mut().push(Tried { load: x, verdict: Verdict::Undecided, margin: Some(x / 37.3) })
                }
                Err(why) => break why,
            }
        };
        let tried = steps.borrow().clone();
        assert_eq!(why, "bracketed");
        let a = s.answer(&tried, &pool);
        let (lo, hi) = (a.low.expect("a pooled low end"), a.high.expect("a pooled high end"));
        assert!(lo < 37.3 && 37.3 < hi && hi / lo < 1.06, "{lo}..{hi}: {tried:?}");
        // Each side's pools share the confidence: as many tests as intervals of its loads.
        for (idx, tests) in asked.borrow().iter() {
            assert!(!idx.is_empty() && [1, 3, 6, 10, 15, 21, 28, 36].contains(tests), "{idx:?} {tests}");
        }
    }

    #[test]
    fn a_step_that_saw_nothing_is_run_again() {
        let s = searcher(1.0, 64.0, true);
        let mut tried = vec![Tried { load: 1.0, verdict: Verdict::Undecided, margin: None }];
        assert_eq!(s.next(&tried, &none), Ok((1.0, Stage::Confirm)));
        // Seen again and settled: the search goes on from it.
        tried.push(Tried { load: 1.0, verdict: Verdict::Holds, margin: Some(0.5) });
        assert_eq!(s.next(&tried, &none), Ok((2.0, Stage::Grow)));
        // Blank twice: it leans to missing.
        tried[1] = Tried { load: 1.0, verdict: Verdict::Undecided, margin: None };
        assert_eq!(s.next(&tried, &none), Err("lowest load missed"));
    }

    thread_local!(static ONCE: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(vec![]) });

    /// Whether `x` was asked for before (this thread's second ask onwards).
    fn tried_once(x: f64) -> bool {
        ONCE.with(|o| {
            let mut o = o.borrow_mut();
            let seen = o.contains(&x.to_bits());
            o.push(x.to_bits());
            seen
        })
    }

    #[test]
    fn the_monotone_fit_pools_violators() {
        let fit = isotonic(&[(1.0, 0.5), (2.0, 0.9), (3.0, 0.7), (4.0, 1.5)]);
        assert_eq!(fit, vec![(1.0, 0.5), (2.0, 0.8), (3.0, 0.8), (4.0, 1.5)]);
        let t = |load, m| Tried { load, verdict: Verdict::Undecided, margin: Some(m) };
        // Crosses between 3 (0.8) and 4 (1.5): 3 + 0.2 / 0.7.
        let x = crossing(&[t(1.0, 0.5), t(2.0, 0.9), t(3.0, 0.7), t(4.0, 1.5)]).unwrap();
        assert!((x - (3.0 + 0.2 / 0.7)).abs() < 1e-12);
        assert_eq!(crossing(&[t(1.0, 1.2)]), None, "no load below the bound");
        // Two steps at one load are averaged before they pool with another load: the lower
        // load keeps its own value when the average is above it.
        let fit = isotonic(&[(16.0, 0.95), (32.0, 0.5), (32.0, 6.0)]);
        assert_eq!(fit, vec![(16.0, 0.95), (32.0, 3.25)]);
    }

    #[test]
    fn looks_grow_and_end_at_the_step_length() {
        let l = looks(10.0);
        assert_eq!(l, vec![1.0, 1.5, 2.25, 3.5, 5.0, 7.5, 10.0]);
        assert_eq!(looks(15.0).len(), 8);
        assert_eq!(looks(0.2), vec![0.25]);
    }
}
