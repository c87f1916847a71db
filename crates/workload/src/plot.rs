//! `lmm plot`: figures of a sampled run (see [`crate::sample`]) as SVG,
//! drawn with the `plotters` crate: memory over time, the fault rate, and
//! fragmentation (free blocks per order and the unusable free space index).
//! The miss-ratio curves of the page-replacement experiments are drawn by
//! [`crate::lackey::policy::render_svg`]. Same samples, same bytes.
//!
//! PNG on request ([`svg_to_png`]): the SVG text is rasterized with the
//! `resvg` crate, so the PNG shows the same figure, but its text is drawn
//! with whatever fonts the system has installed. The SVG is byte-for-byte
//! deterministic; the PNG's bytes depend on the installed fonts.

use plotters::prelude::*;

use crate::sample::{unusable_free_index, Sample, ORDERS};

/// Which figure to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// MemFree, anon, file, slab and swap used in MiB, with the zones'
    /// watermarks added up.
    Memory,
    /// Minor and major faults, swap-ins and swap-outs per sample interval.
    Faults,
    /// The largest zone's free blocks per order, and its unusable free
    /// space index at orders 3 and 9.
    Fragmentation,
}

impl Kind {
    /// Every kind, in the order `--kind all` draws them.
    pub const ALL: [Kind; 3] = [Kind::Memory, Kind::Faults, Kind::Fragmentation];

    /// The kind's name on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Memory => "memory",
            Kind::Faults => "faults",
            Kind::Fragmentation => "fragmentation",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// Fixed colours (the same series always draws the same way).
const COLOURS: [RGBColor; 11] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 0),
];

/// The samples of the last machine the run booted (a scenario's `boot()`
/// replaces the machine, and a plot across two machines would mix their
/// sizes), and a note saying which machine that is.
pub fn last_machine(samples: &[Sample]) -> (&[Sample], String) {
    let Some(last) = samples.last() else {
        return (samples, String::new());
    };
    let start = samples
        .iter()
        .position(|s| s.step.boots == last.step.boots)
        .unwrap_or(0);
    let note = if last.step.boots == 0 {
        String::new()
    } else {
        format!(
            " (the machine of its boot() no. {}, MemTotal {} MiB)",
            last.step.boots,
            last.kb("MemTotal") >> 10
        )
    };
    (&samples[start..], note)
}

/// A named series of (operations, value) points.
type Series = (String, Vec<(f64, f64)>);

/// Draws `kind` for `samples` (the last machine's, see [`last_machine`])
/// under `title`, as an SVG document.
pub fn render(kind: Kind, samples: &[Sample], title: &str) -> Result<String, String> {
    let (samples, note) = last_machine(samples);
    if samples.len() < 2 {
        return Err(format!(
            "{} sample(s): too few to plot (a shorter --every takes more)",
            samples.len()
        ));
    }
    let x = |s: &Sample| s.step.ops as f64;
    let title = format!("{title}{note}");
    let mut svg = String::new();
    match kind {
        Kind::Memory => {
            let mib = |kb: u64| kb as f64 / 1024.0;
            let line = |name: &str, f: &dyn Fn(&Sample) -> u64| -> Series {
                (
                    name.to_string(),
                    samples.iter().map(|s| (x(s), mib(f(s)))).collect(),
                )
            };
            let wm = |f: fn(&crate::sample::ZoneSample) -> u64| {
                move |s: &Sample| s.zones.iter().map(f).sum::<u64>() * 4
            };
            let series = vec![
                line("free (MemFree)", &|s| s.kb("MemFree")),
                line("anon (Active+Inactive)", &|s| {
                    s.kb("Active(anon)") + s.kb("Inactive(anon)")
                }),
                line("file (Active+Inactive)", &|s| {
                    s.kb("Active(file)") + s.kb("Inactive(file)")
                }),
                line("slab (Slab)", &|s| s.kb("Slab")),
                line("swap used", &|s| s.swap_used_kb()),
            ];
            let marks = vec![
                line("min watermark", &wm(|z| z.min)),
                line("low watermark", &wm(|z| z.low)),
                line("high watermark", &wm(|z| z.high)),
            ];
            let root = SVGBackend::with_string(&mut svg, (900, 540)).into_drawing_area();
            chart(
                &root,
                &format!("{title}: memory over time"),
                "MiB",
                &series,
                &marks,
            )?;
            root.present().map_err(|e| e.to_string())?;
        }
        Kind::Faults => {
            let rate = |name: &str, f: &dyn Fn(&Sample) -> u64| -> Series {
                (
                    name.to_string(),
                    samples
                        .windows(2)
                        .map(|w| (x(&w[1]), f(&w[1]).saturating_sub(f(&w[0])) as f64))
                        .collect(),
                )
            };
            let faults = vec![
                // pgfault counts every fault, major ones too (mm/memory.c
                // counts PGFAULT on entry, PGMAJFAULT when I/O was needed).
                rate("minor faults", &|s| {
                    s.vm("pgfault").saturating_sub(s.vm("pgmajfault"))
                }),
                rate("major faults (pgmajfault)", &|s| s.vm("pgmajfault")),
            ];
            let swap = vec![
                rate("pages swapped in (pswpin)", &|s| s.vm("pswpin")),
                rate("pages swapped out (pswpout)", &|s| s.vm("pswpout")),
            ];
            let root = SVGBackend::with_string(&mut svg, (900, 800)).into_drawing_area();
            let (top, bottom) = root.split_vertically(400);
            chart(
                &top,
                &format!("{title}: page faults"),
                "faults per sample interval",
                &faults,
                &[],
            )?;
            chart(
                &bottom,
                "swap traffic",
                "pages per sample interval",
                &swap,
                &[],
            )?;
            root.present().map_err(|e| e.to_string())?;
        }
        Kind::Fragmentation => {
            let zone = samples
                .last()
                .and_then(|s| s.main_zone())
                .map(|z| (z.node, z.name.clone()))
                .ok_or("no populated zone to plot")?;
            let blocks = |s: &Sample| {
                s.zones
                    .iter()
                    .find(|z| (z.node, &z.name) == (zone.0, &zone.1))
                    .map_or([0; ORDERS], |z| z.blocks)
            };
            let per_order: Vec<Series> = (0..ORDERS)
                .map(|o| {
                    (
                        format!("order {o}"),
                        samples
                            .iter()
                            .map(|s| (x(s), blocks(s)[o] as f64))
                            .collect(),
                    )
                })
                .collect();
            let index: Vec<Series> = [3, 9]
                .iter()
                .map(|&o| {
                    (
                        format!("unusable free space index, order {o}"),
                        samples
                            .iter()
                            .map(|s| (x(s), unusable_free_index(&blocks(s), o)))
                            .collect(),
                    )
                })
                .collect();
            let root = SVGBackend::with_string(&mut svg, (900, 800)).into_drawing_area();
            let (top, bottom) = root.split_vertically(480);
            chart(
                &top,
                &format!("{title}: fragmentation of node {} zone {}", zone.0, zone.1),
                "free blocks on the buddy list",
                &per_order,
                &[],
            )?;
            chart(
                &bottom,
                "unusable free space index (0: all free memory usable, 1: none)",
                "index",
                &index,
                &[],
            )?;
            root.present().map_err(|e| e.to_string())?;
        }
    }
    Ok(svg)
}

/// One line chart: `series` as coloured lines and `marks` as thin dashed
/// grey ones, x in Rhai operations, a legend naming each.
fn chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    series: &[Series],
    marks: &[Series],
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let points = series.iter().chain(marks).flat_map(|(_, p)| p.iter());
    let x_min = points.clone().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x_max = points
        .clone()
        .map(|p| p.0)
        .fold(f64::NEG_INFINITY, f64::max);
    let x_max = if x_max > x_min { x_max } else { x_min + 1.0 };
    // Headroom above the highest point for the legend.
    let y_max = points.map(|p| p.1).fold(0.0, f64::max).max(f64::EPSILON) * 1.35;
    area.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_min..x_max, 0.0..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("scenario progress (Rhai operations)")
        .y_desc(y_desc)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(e)?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
            .map_err(e)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    for (i, (name, pts)) in marks.iter().enumerate() {
        let grey = RGBColor(90, 90, 90).mix(0.35 + 0.25 * i as f64);
        chart
            .draw_series(DashedLineSeries::new(
                pts.clone(),
                6,
                4,
                grey.stroke_width(1),
            ))
            .map_err(e)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(1))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    Ok(())
}

/// A PNG rendering of an SVG document (one [`render`] produced) at its
/// own size, and a warning when the system has no font for its text.
///
/// The text is drawn with the system's fonts (fontdb's
/// `load_system_fonts`), so the bytes depend on which fonts are
/// installed, unlike the SVG's. Without any font the figure is still
/// drawn, its text missing, and the warning names the problem.
pub fn svg_to_png(svg: &str) -> Result<(Vec<u8>, Option<String>), String> {
    use resvg::{tiny_skia, usvg};
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_system_fonts();
    let warning = if db.is_empty() {
        Some("no system font found: the PNG's text is missing (install a font, e.g. DejaVu Sans, or use the SVG)".to_string())
    } else {
        // plotters asks for "sans-serif"; fontdb maps it to Arial, which
        // may be absent: then use a sans family that is installed.
        let sans = usvg::fontdb::Query {
            families: &[usvg::fontdb::Family::SansSerif],
            ..Default::default()
        };
        if db.query(&sans).is_none() {
            let names: Vec<String> = db
                .faces()
                .flat_map(|f| f.families.iter().map(|(n, _)| n.clone()))
                .collect();
            let pick = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "FreeSans"]
                .iter()
                .find(|want| names.iter().any(|n| n == *want))
                .map(|s| s.to_string())
                .or_else(|| names.first().cloned());
            if let Some(family) = pick {
                db.set_sans_serif_family(family);
            }
        }
        None
    };
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| format!("SVG to PNG: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| format!("SVG to PNG: bad size {}x{}", size.width(), size.height()))?;
    // The SVG has a white background rectangle; fill anyway so that any
    // uncovered pixel is white, not transparent.
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    let png = pixmap
        .encode_png()
        .map_err(|e| format!("SVG to PNG: {e}"))?;
    Ok((png, warning))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{ScenarioSource, Source};

    /// Samples of a small script that allocates, frees and reboots.
    fn samples() -> Vec<Sample> {
        let script = r#"
            let held = [];
            for i in 0..300 { held.push(alloc_pages("GFP_KERNEL", 0)); }
            boot(#{ram: "32M"});
            let more = [];
            for i in 0..400 { more.push(alloc_pages("GFP_HIGHUSER_MOVABLE", i % 3)); }
        "#;
        let mut src = ScenarioSource {
            file: "t.rhai".into(),
            script: script.into(),
            config: machine::MachineConfig {
                ram: 64 << 20,
                ..Default::default()
            },
            limits: Default::default(),
            every: 50,
        };
        src.collect().expect("the script runs")
    }

    #[test]
    fn each_kind_is_svg_with_its_series_and_the_same_bytes_twice() {
        let s = samples();
        let (last, note) = last_machine(&s);
        assert!(
            last.len() < s.len() && last.len() > 2,
            "{} of {}",
            last.len(),
            s.len()
        );
        assert_eq!(note, " (the machine of its boot() no. 1, MemTotal 24 MiB)");
        assert!(last.iter().all(|x| x.kb("MemTotal") < 32 << 10));
        let again = samples();
        for kind in Kind::ALL {
            let doc = render(kind, &s, "t").expect("renders");
            assert!(doc.starts_with("<svg ") && doc.trim_end().ends_with("</svg>"));
            let names: &[&str] = match kind {
                Kind::Memory => &[
                    "free (MemFree)",
                    "anon (Active+Inactive)",
                    "swap used",
                    "low watermark",
                ],
                Kind::Faults => &["minor faults", "major faults (pgmajfault)", "pswpout"],
                Kind::Fragmentation => {
                    &["order 0", "order 10", "unusable free space index, order 9"]
                }
            };
            for n in names {
                assert!(doc.contains(n), "{} lacks {n}", kind.name());
            }
            assert_eq!(doc, render(kind, &again, "t").unwrap(), "{}", kind.name());
        }
    }

    #[test]
    fn too_few_samples_is_an_error() {
        let s = samples();
        let one = &s[s.len() - 1..];
        assert!(render(Kind::Memory, one, "t")
            .unwrap_err()
            .contains("too few"));
    }

    /// The PNG of each kind: the PNG signature, an IHDR with the SVG's
    /// width and height, and not blank (the lines and axes are drawn).
    #[test]
    fn png_has_the_signature_the_size_and_is_not_blank() {
        let s = samples();
        for (kind, w, h) in [
            (Kind::Memory, 900, 540),
            (Kind::Faults, 900, 800),
            (Kind::Fragmentation, 900, 800),
        ] {
            let svg = render(kind, &s, "t").unwrap();
            let (png, _warning) = svg_to_png(&svg).expect("renders");
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{}", kind.name());
            // The first chunk: length 13, "IHDR", width and height big-endian.
            assert_eq!(&png[8..16], b"\0\0\0\x0dIHDR");
            let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            assert_eq!((be(&png[16..20]), be(&png[20..24])), (w, h));
            let pixmap = resvg::tiny_skia::Pixmap::decode_png(&png).unwrap();
            let px = pixmap.pixels();
            let background = px[0];
            let differ = px.iter().filter(|p| **p != background).count();
            assert!(
                differ > px.len() / 200,
                "{}: {differ} of {} pixels drawn",
                kind.name(),
                px.len()
            );
        }
    }
}
