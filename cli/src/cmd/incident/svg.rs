//! The timeline of `report.html` as inline SVG: a time axis, one lane per
//! actor with a dot per entry (its seq and category as a tooltip), and the
//! milestones as labelled vertical lines.
//!
//! Owns: the drawing's geometry. Must not: compute the timeline.

use ledger::pack::timeline::Timeline;

use super::report::{esc, milestone_list};
use crate::client::rfc3339;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 170.0;
const RIGHT: f64 = 20.0;
const LANE: f64 = 26.0;
const TOP: f64 = 70.0;

/// The x of time `t` on the axis `[t0, t1]`.
fn x(t: i64, t0: i64, t1: i64) -> f64 {
    LEFT + (t - t0) as f64 / (t1 - t0) as f64 * (WIDTH - LEFT - RIGHT)
}

/// The SVG element.
pub fn timeline(t: &Timeline) -> String {
    let times: Vec<i64> = t.entries.iter().map(|e| e.at()).collect();
    let t0 = times.iter().copied().min().unwrap_or(0);
    let t1 = times.iter().copied().max().unwrap_or(0).max(t0 + 1_000_000_000);
    let mut actors: Vec<&str> = Vec::new();
    for e in &t.entries {
        if !actors.contains(&e.actor.as_str()) {
            actors.push(&e.actor);
        }
    }
    let height = TOP + LANE * actors.len() as f64 + 40.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n"
    );
    for (i, a) in actors.iter().enumerate() {
        let y = TOP + LANE * i as f64 + LANE / 2.0;
        s.push_str(&format!(
            "<text x=\"4\" y=\"{:.1}\">{}</text><line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\n",
            y + 4.0,
            esc(a),
            WIDTH - RIGHT
        ));
    }
    milestones(&mut s, t, (t0, t1), height);
    for e in &t.entries {
        let lane = actors.iter().position(|a| *a == e.actor).unwrap_or(0);
        let y = TOP + LANE * lane as f64 + LANE / 2.0;
        s.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"#36c\"><title>seq {} {} by {} at {}</title></circle>\n",
            x(e.at(), t0, t1),
            e.seq,
            esc(&e.category),
            esc(&e.actor),
            rfc3339(e.at())
        ));
    }
    let axis = height - 30.0;
    s.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{axis}\" x2=\"{:.1}\" y2=\"{axis}\" stroke=\"#000\"/><text x=\"{LEFT}\" y=\"{:.1}\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} (+{:.0} s)</text>\n</svg>\n",
        WIDTH - RIGHT,
        axis + 16.0,
        rfc3339(t0),
        WIDTH - RIGHT,
        axis + 16.0,
        rfc3339(t1),
        (t1 - t0) as f64 / 1e9
    ));
    s
}

/// The milestones: a dashed vertical line each, labelled, the labels in
/// four rows so that close ones do not overlap.
fn milestones(s: &mut String, t: &Timeline, (t0, t1): (i64, i64), height: f64) {
    for (row, (name, m)) in milestone_list(&t.milestones).into_iter().enumerate() {
        let Some(m) = m else { continue };
        let mx = x(m.at, t0, t1);
        let ly = 14.0 + 12.0 * (row % 4) as f64;
        // labels near the right edge end at their line instead of starting there
        let (lx, anchor) = if mx > WIDTH - 160.0 { (mx - 3.0, "end") } else { (mx + 3.0, "start") };
        s.push_str(&format!(
            "<line x1=\"{mx:.1}\" y1=\"{ly:.1}\" x2=\"{mx:.1}\" y2=\"{:.1}\" stroke=\"#c33\" stroke-dasharray=\"3,2\"/><text x=\"{lx:.1}\" y=\"{ly:.1}\" fill=\"#c33\" text-anchor=\"{anchor}\">{name} (seq {})</text>\n",
            height - 30.0,
            m.seq
        ));
    }
}
