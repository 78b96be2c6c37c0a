//! Progress bars on a terminal, nothing when stderr is piped (and, for
//! [`count_bar`], nothing when stdout is not a terminal either).
//!
//! Owns: how progress is drawn. Must not: print results (they go to stdout
//! through the commands).

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte-progress bar (`total` unknown → a spinner with a byte count).
pub fn bytes_bar(total: Option<u64>, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
    }
    let bar = match total {
        Some(t) => ProgressBar::new(t).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .expect("template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner()
            .with_style(ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}").expect("template")),
    };
    bar.set_message(what.to_owned());
    bar
}

/// Whether a bar of [`count_bar`] or [`interactive_bytes_bar`] is drawn:
/// stdout and stderr are both terminals (a command whose output is
/// redirected or piped draws none).
fn interactive() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// A bar counting `total` items (`what`: "lines", …), drawn on stderr only
/// when [`interactive`].
pub fn count_bar(total: u64, msg: &str, what: &str) -> ProgressBar {
    if !interactive() {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    let template = format!("{{msg}} [{{bar:30}}] {{pos}}/{{len}} {what} {{per_sec}} eta {{eta}}");
    let bar = ProgressBar::new(total)
        .with_style(ProgressStyle::with_template(&template).expect("template").progress_chars("=> "));
    bar.set_message(msg.to_owned());
    bar
}

/// [`bytes_bar`] with a known total, drawn only when [`interactive`].
pub fn interactive_bytes_bar(total: u64, msg: &str) -> ProgressBar {
    if !interactive() {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    bytes_bar(Some(total), msg)
}
