//! Writing a report: minijinja templates for Markdown, LaTeX (booktabs) and HTML, CSV from
//! code. HTML templates escape every value (auto-escape); LaTeX templates escape with `|tex`,
//! Markdown with `|md`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use super::svg::{self, Plot};
use super::tables::TableView;
use crate::query::table::csv_record;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Markdown: one `<table>.md` each.
    Md,
    /// LaTeX with booktabs rules: one `<table>.tex` each.
    Tex,
    /// `index.html` with every table and the plots, offline.
    Html,
    /// One `<table>.csv` each, one row per cell.
    Csv,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 4] = [Format::Md, Format::Tex, Format::Html, Format::Csv];
}

/// Where a report's recipes come from: file, content hash and description.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecipeRef {
    /// The recipe file.
    pub file: String,
    /// First 12 hex digits of the sha256 of its content.
    pub sha256: String,
    /// Its experiment's name.
    pub experiment: String,
    /// Its experiment's description.
    pub description: String,
}

/// A table left out of the report: no stage of its recipes can fill it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeftOut {
    /// Its `--table` name.
    pub name: String,
    /// Its heading.
    pub title: String,
}

/// A plot with its SVG.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlotView {
    /// Element id.
    pub id: String,
    /// Heading.
    pub title: String,
    /// The `<svg>` element (texts already escaped).
    pub svg: String,
}

/// Everything the templates see.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportView {
    /// A smoke-scale banner (empty at paper scale).
    pub banner: String,
    /// The recipes behind it.
    pub recipes: Vec<RecipeRef>,
    /// Code versions behind its cells.
    pub code: Vec<String>,
    /// Evaluations of the plan that have results, and all of them.
    pub evaluated: usize,
    /// Evaluations in the plan.
    pub evaluations: usize,
    /// The tables some stage of the recipes can fill.
    pub tables: Vec<TableView>,
    /// The tables none can: not written, named once in `index.html`.
    pub left_out: Vec<LeftOut>,
    /// The plots.
    pub plots: Vec<PlotView>,
}

/// The plot views of `plots`.
pub fn plot_views(plots: &[Plot]) -> Vec<PlotView> {
    plots
        .iter()
        .map(|p| PlotView {
            id: p.id.clone(),
            title: p.title.clone(),
            svg: svg::render(p),
        })
        .collect()
}

/// Template files, in `tables/`.
const MD_TEMPLATE: &str = "table.md.j2";
const TEX_TEMPLATE: &str = "table.tex.j2";
const HTML_TEMPLATE: &str = "index.html.j2";

/// The templates of `dir` in an environment with the `tex` and `md` filters.
fn environment(dir: &Path, formats: &[Format]) -> anyhow::Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.contains(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.add_filter("tex", tex_escape);
    env.add_filter("md", md_escape);
    for (format, name) in [
        (Format::Md, MD_TEMPLATE),
        (Format::Tex, TEX_TEMPLATE),
        (Format::Html, HTML_TEMPLATE),
    ] {
        if formats.contains(&format) {
            let path = dir.join(name);
            let source = fs_err::read_to_string(&path)?;
            env.add_template_owned(name.to_string(), source)
                .with_context(|| format!("{}: template error", path.display()))?;
        }
    }
    Ok(env)
}

/// Writes `report` to `out` in `formats`; returns the files written.
pub fn write(
    report: &ReportView,
    templates: &Path,
    formats: &[Format],
    out: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    fs_err::create_dir_all(out)?;
    let env = environment(templates, formats)?;
    let mut written = Vec::new();
    let mut save = |name: String, text: String| -> anyhow::Result<()> {
        let path = out.join(name);
        fs_err::write(&path, text)?;
        written.push(path);
        Ok(())
    };
    for format in formats {
        match format {
            Format::Md | Format::Tex => {
                let (template, ext) = if *format == Format::Md {
                    (MD_TEMPLATE, "md")
                } else {
                    (TEX_TEMPLATE, "tex")
                };
                let template = env.get_template(template)?;
                for table in &report.tables {
                    let text = template
                        .render(minijinja::context! { report => report, table => table })
                        .with_context(|| {
                            format!(
                                "rendering table `{}` with {}",
                                table.name,
                                templates.join(template.name()).display()
                            )
                        })?;
                    save(format!("{}.{ext}", table.name), text)?;
                }
            }
            Format::Html => {
                let text = env
                    .get_template(HTML_TEMPLATE)?
                    .render(minijinja::context! { report => report })
                    .with_context(|| {
                        format!("rendering {}", templates.join(HTML_TEMPLATE).display())
                    })?;
                save("index.html".to_string(), text)?;
            }
            Format::Csv => {
                for table in &report.tables {
                    save(format!("{}.csv", table.name), csv(table))?;
                }
            }
        }
    }
    Ok(written)
}

/// A table as CSV, one line per cell: row, column, reproduced, reported, delta, verdict,
/// assumption note, stage keys and source.
pub fn csv(table: &TableView) -> String {
    let mut text = csv_record(&[
        "table",
        "row",
        "column",
        "reproduced",
        "reported",
        "delta",
        "verdict",
        "note",
        "provenance",
    ]);
    for row in &table.rows {
        for (column, cell) in table.columns.iter().zip(&row.cells) {
            let fields = [
                table.name.as_str(),
                row.label.as_str(),
                column.as_str(),
                cell.reproduced.as_str(),
                cell.reported.as_str(),
                cell.delta.as_str(),
                cell.verdict.as_str(),
                &if cell.note > 0 {
                    table.notes[cell.note - 1].clone()
                } else {
                    String::new()
                },
                cell.title.as_str(),
            ];
            text += &csv_record(&fields);
        }
    }
    text
}

/// Escapes LaTeX specials and spells the report's symbols in LaTeX.
fn tex_escape(text: String) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '<' => out.push_str("\\textless{}"),
            '>' => out.push_str("\\textgreater{}"),
            '±' => out.push_str("$\\pm$"),
            '−' => out.push_str("$-$"),
            'Δ' => out.push_str("$\\Delta$"),
            '✓' => out.push_str("\\checkmark{}"),
            '✗' => out.push_str("$\\times$"),
            '≈' => out.push_str("$\\approx$"),
            '⚠' => out.push_str("$^\\dagger$"),
            '—' => out.push_str("---"),
            '·' => out.push_str("$\\cdot$"),
            '×' => out.push_str("$\\times$"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes Markdown table specials: pipes, line breaks and HTML brackets.
fn md_escape(text: String) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latex_and_markdown_specials_are_escaped() {
        assert_eq!(
            tex_escape("f1_car 50% & ±".into()),
            "f1\\_car 50\\% \\& $\\pm$"
        );
        assert_eq!(md_escape("a|b <script>".into()), "a\\|b &lt;script&gt;");
    }

    #[test]
    fn a_table_is_one_csv_record_per_cell_with_rfc_4180_quoting() {
        let table = TableView {
            name: "t".into(),
            columns: vec!["a,b".into()],
            rows: vec![super::super::tables::RowView {
                label: "say \"hi\"".into(),
                cells: vec![Default::default()],
            }],
            ..Default::default()
        };
        let text = csv(&table);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "table,row,column,reproduced,reported,delta,verdict,note,provenance"
        );
        assert_eq!(lines[1], "t,\"say \"\"hi\"\"\",\"a,b\",,,,,,");
        assert_eq!(lines.len(), 3, "{text:?}");
    }
}
