//! `completions` and `manpage`: documents generated from the command-line definitions, made
//! without p2pd.

use std::io::Write;

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::Error;

/// Writes the completion script for `shell` to `out`.
pub(crate) fn completions(shell: Shell, out: &mut impl Write) -> Result<(), Error> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "p2pctl", &mut script);
    write_all(out, &script)
}

/// Writes the man page to `out`: one roff document, the top page followed by a section on
/// every command (and every `share` action) with its synopsis, description and arguments.
pub(crate) fn manpage(out: &mut impl Write) -> Result<(), Error> {
    let mut cmd = Cli::command();
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    let render = |page: &mut Vec<u8>| -> std::io::Result<()> {
        man.render_title(page)?;
        man.render_name_section(page)?;
        man.render_synopsis_section(page)?;
        man.render_description_section(page)?;
        man.render_options_section(page)?;
        writeln!(page, ".SH COMMANDS")?;
        for sub in visible(&cmd) {
            command_section(page, sub)?;
        }
        man.render_extra_section(page)?;
        man.render_version_section(page)
    };
    render(&mut page).map_err(Error::Output)?;
    write_all(out, &page)
}

/// The subcommands worth a section: not hidden, not clap's `help`.
fn visible(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

/// One command's subsection, then its own subcommands'.
fn command_section(page: &mut Vec<u8>, cmd: &clap::Command) -> std::io::Result<()> {
    let name = cmd.get_bin_name().unwrap_or(cmd.get_name());
    writeln!(page, ".SS \"{}\"", escape(name))?;
    let mut sub = cmd.clone();
    let usage = sub.render_usage().to_string();
    let usage = usage.trim().trim_start_matches("Usage:").trim();
    writeln!(page, ".nf\n\\fB{}\\fR\n.fi", escape(usage))?;
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        for para in about.to_string().split("\n\n") {
            writeln!(page, ".PP\n{}", escape(para.trim()))?;
        }
    }
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_hide_set() || arg.is_global_set() || id == "help" || id == "version" {
            continue;
        }
        let value = arg.get_value_names().map(|v| {
            v.iter()
                .map(|n| format!("<{n}>"))
                .collect::<Vec<_>>()
                .join(" ")
        });
        let head = match (arg.get_long(), value) {
            (Some(long), Some(v)) if arg.get_action().takes_values() => {
                format!("\\fB\\-\\-{}\\fR \\fI{}\\fR", escape(long), escape(&v))
            }
            (Some(long), _) => format!("\\fB\\-\\-{}\\fR", escape(long)),
            (None, Some(v)) => format!("\\fI{}\\fR", escape(&v)),
            (None, None) => format!("\\fI{}\\fR", escape(id)),
        };
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        writeln!(page, ".TP\n{head}\n{}", escape(help.trim()))?;
    }
    for sub in visible(cmd) {
        command_section(page, sub)?;
    }
    Ok(())
}

/// Text made safe for roff: backslashes and hyphens escaped, no line read as a request.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('-', "\\-")
        .lines()
        .map(|line| {
            if line.starts_with(['.', '\'']) {
                format!("\\&{line}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes a whole document, a failed write being an output error.
fn write_all(out: &mut impl Write, bytes: &[u8]) -> Result<(), Error> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(Error::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_escapes_requests_and_hyphens() {
        assert_eq!(escape(".x a-b\n'y\\z"), "\\&.x a\\-b\n\\&'y\\\\z");
    }

    #[test]
    fn manpage_has_a_section_per_command() {
        let mut page = Vec::new();
        manpage(&mut page).expect("render");
        let page = String::from_utf8(page).expect("utf-8");
        // clap_mangen defines a string first; the title is the first line after it.
        let first = page
            .lines()
            .find(|l| !l.starts_with(".ie") && !l.starts_with(".el"));
        assert!(
            first.is_some_and(|l| l.starts_with(".TH p2pctl 1")),
            "{page}"
        );
        for name in ["status", "share add", "versions", "put"] {
            assert!(page.contains(&format!(".SS \"p2pctl {name}\"")), "{name}");
        }
    }

    #[test]
    fn bash_completion_names_commands() {
        let mut script = Vec::new();
        completions(Shell::Bash, &mut script).expect("generate");
        let script = String::from_utf8(script).expect("utf-8");
        assert!(script.contains("_p2pctl()") && script.contains("versions"));
    }
}
