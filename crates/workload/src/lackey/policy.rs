//! Page-replacement experiments on a lackey trace (`lmm replay lackey FILE
//! --frames N --policy P`, `--sweep LIST [--svg FILE]`): the trace's page
//! reference string ([`super::reference_string`]) run through the policies
//! of `mm::replacement` with a fixed number of frames.
//!
//! `--frames` runs each policy on a process of lmm's machine limited to N
//! resident pages, with real swap ([`super::frames`]), and checks that it
//! agrees with the plain simulation; `--sweep` simulates the reference
//! string (the textbook machine: a software accessed bit per page) for
//! each frame count.

use std::fmt::Write as _;
use std::io::Write;

use mm::replacement::{policy_by_name, Curve, RefString, SimStats, POLICIES};

use super::LackeyError;

/// What `--frames`, `--policy`, `--sweep` and `--svg` asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyArgs {
    /// `--frames N`: one run per policy with N frames.
    pub frames: Option<usize>,
    /// `--policy P[,P...]`: the policies (default: `linux` for `--frames`,
    /// all of them for `--sweep`).
    pub policies: Vec<String>,
    /// `--sweep N,N,...`: frame counts, ascending, without repeats.
    pub sweep: Option<Vec<usize>>,
    /// `--svg FILE`: draw the sweep's curves there.
    pub svg: Option<String>,
}

/// Parses `--frames`' value.
pub fn parse_frames(v: &str, flag: &str) -> Result<usize, String> {
    match v.trim().parse::<usize>() {
        Ok(0) => Err(format!(
            "{flag} 0: expected a number of frames of at least 1"
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "{flag} {v:?}: expected a number of frames (a positive integer)"
        )),
    }
}

/// Parses `--sweep`'s comma-separated frame counts (sorted, repeats
/// dropped).
pub fn parse_sweep(v: &str) -> Result<Vec<usize>, String> {
    let mut out = v
        .split(',')
        .map(|f| parse_frames(f, "--sweep"))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Parses `--policy`'s comma-separated names, each one
/// `mm::replacement::policy_by_name` knows.
pub fn parse_policies(v: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for name in v.split(',').map(str::trim) {
        // Every policy is built with a future here, so this only checks
        // the name.
        policy_by_name(name, Some(&[])).map_err(|e| format!("--policy: {e}"))?;
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

impl PolicyArgs {
    /// Checks the combination; fills in the default policies.
    pub fn finish(mut self) -> Result<PolicyArgs, String> {
        match (&self.frames, &self.sweep) {
            (Some(_), Some(_)) => {
                return Err("--frames and --sweep: give one or the other".into());
            }
            (None, None) => {
                return Err("--policy and --svg need --frames N or --sweep N,N,...".into());
            }
            _ => {}
        }
        if self.svg.is_some() && self.sweep.is_none() {
            return Err("--svg draws the curves of --sweep: give --sweep N,N,... too".into());
        }
        if self.policies.is_empty() {
            self.policies = if self.frames.is_some() {
                vec!["linux".to_string()]
            } else {
                POLICIES.iter().map(|s| s.to_string()).collect()
            };
        }
        Ok(self)
    }
}

fn io_err(e: std::io::Error) -> LackeyError {
    LackeyError::Io {
        file: "<output>".into(),
        line: 0,
        msg: e.to_string(),
    }
}

fn sim_err(file: &str, e: String) -> LackeyError {
    LackeyError::Usage(format!("{file}: {e}"))
}

/// The result of a `--frames` or `--sweep` run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyReport {
    /// References in the string (one per page per access).
    pub references: u64,
    /// Distinct pages.
    pub distinct: u64,
    /// `(policy, frames, stats)` for each run, in the order printed.
    pub runs: Vec<(String, usize, SimStats)>,
}

impl PolicyReport {
    /// The runs as miss-ratio curves, one per policy.
    pub fn curves(&self) -> Vec<Curve> {
        let mut out: Vec<Curve> = Vec::new();
        for (name, frames, stats) in &self.runs {
            let point = (*frames, stats.miss_ratio());
            match out.iter_mut().find(|(n, _)| n == name) {
                Some((_, c)) => c.push(point),
                None => out.push((name.clone(), vec![point])),
            }
        }
        out
    }
}

/// Runs `refs` (the page reference string of `file`) as `args` asks and
/// writes the report to `out`:
///
/// With `--frames N`, for each policy:
/// ```text
/// policy: lru, frames: 8
/// faults: 120
/// swap-ins: 100
/// swap-outs: 112
/// ```
/// With `--sweep`, one line per policy and frame count, policies in the
/// order given, frame counts ascending, fields separated by one blank:
/// ```text
/// # POLICY FRAMES FAULTS SWAP-INS SWAP-OUTS MISS-RATIO
/// lru 8 120 100 112 0.201680
/// ```
/// (the miss ratio is faults per reference, with six decimals). Either is
/// preceded by `references: R (D distinct pages)`. `progress(done,
/// total)` is called after each policy's run at each frame count.
pub fn run(
    refs: &[u64],
    file: &str,
    args: &PolicyArgs,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<PolicyReport, LackeyError> {
    let (rs, mut report, mut text) = start(refs, file)?;
    let frame_counts: Vec<usize> = match (&args.sweep, args.frames) {
        (Some(s), _) => s.clone(),
        (None, Some(f)) => vec![f],
        (None, None) => Vec::new(),
    };
    let total = (args.policies.len() * frame_counts.len()) as u64;
    if args.sweep.is_some() {
        text.push_str("# POLICY FRAMES FAULTS SWAP-INS SWAP-OUTS MISS-RATIO\n");
    }
    for name in &args.policies {
        for &frames in &frame_counts {
            let mut p = policy_by_name(name, Some(refs)).map_err(|e| sim_err(file, e))?;
            let s = rs
                .simulate_with(frames, p.as_mut(), &mut |_, _| {})
                .map_err(|e| sim_err(file, e))?;
            if args.sweep.is_some() {
                let _ = writeln!(
                    text,
                    "{name} {frames} {} {} {} {:.6}",
                    s.faults,
                    s.swap_ins,
                    s.evictions,
                    s.miss_ratio()
                );
            } else {
                let _ = write!(
                    text,
                    "policy: {name}, frames: {frames}\nfaults: {}\nswap-ins: {}\nswap-outs: {}\n",
                    s.faults, s.swap_ins, s.evictions
                );
            }
            report.runs.push((name.clone(), frames, s));
            progress(report.runs.len() as u64, total);
        }
    }
    out.write_all(text.as_bytes()).map_err(io_err)?;
    if let Some(svg) = &args.svg {
        let title = format!("miss-ratio curves: {file}");
        let doc = render_svg(&report.curves(), &title)
            .map_err(|e| LackeyError::Usage(format!("--svg {svg}: {e}")))?;
        std::fs::write(svg, doc).map_err(|e| LackeyError::Io {
            file: svg.clone(),
            line: 0,
            msg: e.to_string(),
        })?;
    }
    Ok(report)
}

/// The compacted string, an empty report and its first line.
fn start(refs: &[u64], file: &str) -> Result<(RefString, PolicyReport, String), LackeyError> {
    let rs = RefString::new(refs).map_err(|e| sim_err(file, e))?;
    let report = PolicyReport {
        references: rs.len() as u64,
        distinct: rs.distinct() as u64,
        runs: Vec::new(),
    };
    let text = format!(
        "references: {} ({} distinct pages)\n",
        report.references, report.distinct
    );
    Ok((rs, report, text))
}

/// `--frames N` on the machine: for each policy, the report lines of
/// [`run`] from a run on a machine process limited to N pages with real
/// swap, then `machine: F faults (M major), pswpin I, pswpout O,
/// mismatches K` as the machine counted them. `progress(done, total)` is
/// called after each policy's run.
pub fn run_machine(
    refs: &[u64],
    file: &str,
    args: &PolicyArgs,
    frames: usize,
    config: &machine::MachineConfig,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<PolicyReport, LackeyError> {
    let (_, mut report, mut text) = start(refs, file)?;
    for name in &args.policies {
        let r = super::frames::run_on_machine(refs, name, frames, config)
            .map_err(|e| sim_err(file, e))?;
        let _ = write!(
            text,
            "policy: {name}, frames: {frames}\nfaults: {}\nswap-ins: {}\nswap-outs: {}\nmachine: {} faults ({} major), pswpin {}, pswpout {}, mismatches {}\n",
            r.faults, r.swap_ins, r.swap_outs, r.machine_faults.0, r.machine_faults.1, r.pswp.0, r.pswp.1, r.mismatches
        );
        report.runs.push((
            name.clone(),
            frames,
            SimStats {
                references: report.references,
                faults: r.faults,
                swap_ins: r.swap_ins,
                evictions: r.swap_outs,
            },
        ));
        progress(report.runs.len() as u64, args.policies.len() as u64);
    }
    out.write_all(text.as_bytes()).map_err(io_err)?;
    Ok(report)
}

/// The colour of the `i`th curve (fixed, so the same sweep draws the same
/// picture).
const COLOURS: [(u8, u8, u8); 8] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
];

/// Draws miss-ratio curves (frames on x, miss ratio on y, one line and
/// legend entry per policy) as an SVG document, with the `plotters` crate.
pub fn render_svg(curves: &[Curve], title: &str) -> Result<String, String> {
    use plotters::prelude::*;

    let points = curves.iter().flat_map(|(_, c)| c.iter());
    let x_max = points.clone().map(|p| p.0).max().unwrap_or(1).max(1);
    let x_min = points
        .clone()
        .map(|p| p.0)
        .min()
        .unwrap_or(0)
        .min(x_max - 1);
    let y_max = points.map(|p| p.1).fold(0.0f64, f64::max).max(f64::EPSILON) * 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_min..x_max, 0.0..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("frames")
            .y_desc("miss ratio (faults / references)")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (name, curve)) in curves.iter().enumerate() {
            let (r, g, b) = COLOURS[i % COLOURS.len()];
            let colour = RGBColor(r, g, b);
            let mut pts = curve.clone();
            pts.sort_by_key(|p| p.0);
            chart
                .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frames_sweeps_and_policies() {
        assert_eq!(parse_frames("8", "--frames"), Ok(8));
        assert_eq!(
            parse_frames("0", "--frames"),
            Err("--frames 0: expected a number of frames of at least 1".into())
        );
        assert!(parse_frames("-1", "--frames").is_err());
        assert_eq!(parse_sweep("16,4,8,4"), Ok(vec![4, 8, 16]));
        assert!(parse_sweep("4,,8").is_err());
        assert!(parse_sweep("4,0").unwrap_err().starts_with("--sweep 0: "));
        assert_eq!(
            parse_policies("lru,opt,lru"),
            Ok(vec!["lru".to_string(), "opt".to_string()])
        );
        assert!(parse_policies("lru,nope")
            .unwrap_err()
            .starts_with("--policy: unknown replacement policy \"nope\""));
    }

    #[test]
    fn combinations() {
        let a = PolicyArgs {
            frames: Some(4),
            ..PolicyArgs::default()
        }
        .finish()
        .unwrap();
        assert_eq!(a.policies, ["linux"]);
        let a = PolicyArgs {
            sweep: Some(vec![1, 2]),
            ..PolicyArgs::default()
        }
        .finish()
        .unwrap();
        assert_eq!(a.policies, POLICIES);
        let both = PolicyArgs {
            frames: Some(4),
            sweep: Some(vec![1]),
            ..PolicyArgs::default()
        };
        assert!(both.finish().is_err());
        let svg_alone = PolicyArgs {
            frames: Some(4),
            svg: Some("x.svg".into()),
            ..PolicyArgs::default()
        };
        assert!(svg_alone.finish().unwrap_err().starts_with("--svg draws"));
    }

    /// Belady's anomaly string (FIFO: 9 faults with 3 frames, 10 with 4)
    /// through the report, byte for byte.
    #[test]
    fn sweep_report_format() {
        let refs = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5];
        let args = PolicyArgs {
            policies: vec!["fifo".into(), "opt".into()],
            sweep: Some(vec![3, 4]),
            ..PolicyArgs::default()
        };
        let mut out = Vec::new();
        let mut calls = Vec::new();
        let r = run(&refs, "t", &args, &mut out, &mut |d, t| calls.push((d, t))).unwrap();
        // One progress call per run: 2 policies x 2 frame counts.
        assert_eq!(calls, [(1, 4), (2, 4), (3, 4), (4, 4)]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "references: 12 (5 distinct pages)\n\
             # POLICY FRAMES FAULTS SWAP-INS SWAP-OUTS MISS-RATIO\n\
             fifo 3 9 4 6 0.750000\n\
             fifo 4 10 5 6 0.833333\n\
             opt 3 7 2 4 0.583333\n\
             opt 4 6 1 2 0.500000\n"
        );
        assert_eq!(
            r.curves()[0],
            ("fifo".into(), vec![(3, 0.75), (4, 10.0 / 12.0)])
        );
    }

    #[test]
    fn frames_report_format() {
        let refs = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];
        let args = PolicyArgs {
            policies: vec!["lru".into()],
            frames: Some(3),
            ..PolicyArgs::default()
        };
        let mut out = Vec::new();
        run(&refs, "t", &args, &mut out, &mut |_, _| {}).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "references: 20 (6 distinct pages)\npolicy: lru, frames: 3\n\
             faults: 12\nswap-ins: 6\nswap-outs: 9\n"
        );
    }

    #[test]
    fn svg_is_deterministic_and_names_every_policy() {
        let curves = vec![
            ("lru".to_string(), vec![(4, 0.5), (2, 0.75), (8, 0.25)]),
            ("opt".to_string(), vec![(2, 0.6), (4, 0.4), (8, 0.2)]),
        ];
        let a = render_svg(&curves, "miss-ratio curves: t").unwrap();
        let b = render_svg(&curves, "miss-ratio curves: t").unwrap();
        assert_eq!(a, b);
        assert!(a.starts_with("<svg"), "{}", &a[..a.len().min(200)]);
        assert!(a.contains("\nlru\n</text>") && a.contains("\nopt\n</text>"));
        assert!(a.contains("miss-ratio curves: t"));
        // Each curve is drawn once, and once more as its legend's swatch,
        // in its own colour; the points are sorted by frames.
        assert_eq!(a.matches("stroke=\"#1F77B4\"").count(), 2);
        assert_eq!(a.matches("stroke=\"#FF7F0E\"").count(), 2);
        let lru = a.split("stroke=\"#1F77B4\"").nth(1).unwrap();
        let pts = lru
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let xs: Vec<i32> = pts
            .split_whitespace()
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(xs.len(), 3);
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{pts}");
        // Nothing to draw is still a picture, not a panic.
        assert!(render_svg(&[], "empty").unwrap().starts_with("<svg"));
    }
}
