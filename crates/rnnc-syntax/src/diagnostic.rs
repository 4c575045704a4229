//! Diagnostics: a message, labelled spans and notes, rendered by codespan-reporting
//! as `error: … --> file:line:col` with a caret under the offending source.

use crate::source::{SourceMap, Span};
use codespan_reporting::diagnostic as cr;
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A span with the text to print under its caret. The first label is the primary one.
#[derive(Clone, Debug)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub labels: Vec<Label>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            labels: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a label; the first one added is drawn as the primary caret.
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Renders the diagnostic as plain text (no colour), exactly as the CLI prints it.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut files = SimpleFiles::new();
        let ids: Vec<usize> = sources
            .files()
            .map(|(_, f)| files.add(f.name.clone(), f.text.clone()))
            .collect();
        let severity = match self.severity {
            Severity::Error => cr::Severity::Error,
            Severity::Warning => cr::Severity::Warning,
        };
        let labels = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let style = if i == 0 {
                    cr::LabelStyle::Primary
                } else {
                    cr::LabelStyle::Secondary
                };
                cr::Label::new(style, ids[l.span.file.0], l.span.start..l.span.end)
                    .with_message(l.message.clone())
            })
            .collect();
        let diag = cr::Diagnostic::new(severity)
            .with_message(self.message.clone())
            .with_labels(labels)
            .with_notes(self.notes.clone());
        let config = term::Config::default();
        term::emit_into_string(&config, &files, &diag).unwrap_or_else(|e| {
            format!(
                "error: {} (and the diagnostic could not be drawn: {e})\n",
                self.message
            )
        })
    }
}

/// Renders several diagnostics one after another.
pub fn render_all(diags: &[Diagnostic], sources: &SourceMap) -> String {
    diags.iter().map(|d| d.render(sources)).collect()
}
