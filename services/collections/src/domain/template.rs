//! Dunning message templates: text with `{{placeholder}}`s, checked when a policy is
//! published so that a typo is refused then, not discovered in a customer's letter.

use std::fmt;

/// Longest template accepted.
const MAX_TEMPLATE_LEN: usize = 4000;

/// A value a template may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    CustomerName,
    InvoiceNumber,
    /// The amount dunned with its currency ("1250.00 CNY").
    Amount,
    /// ISO date ("2026-03-31").
    DueDate,
    DaysPastDue,
}

impl Placeholder {
    /// Every placeholder with its name in templates.
    pub const ALL: [(Placeholder, &'static str); 5] = [
        (Placeholder::CustomerName, "customer_name"),
        (Placeholder::InvoiceNumber, "invoice_number"),
        (Placeholder::Amount, "amount"),
        (Placeholder::DueDate, "due_date"),
        (Placeholder::DaysPastDue, "days_past_due"),
    ];

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(placeholder, _)| *placeholder)
    }

    fn known_names() -> String {
        Self::ALL
            .iter()
            .map(|(_, name)| format!("{{{{{name}}}}}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("is required")]
    Empty,
    #[error("is longer than {MAX_TEMPLATE_LEN} characters")]
    TooLong,
    #[error("has an unknown placeholder {{{{{name}}}}}; known: {known}")]
    UnknownPlaceholder { name: String, known: String },
    #[error("has a '{{{{' at character {position} that is never closed by '}}}}'")]
    Unclosed { position: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Value(Placeholder),
}

/// A checked template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplate {
    source: String,
    segments: Vec<Segment>,
}

/// The values a template is rendered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateValues {
    pub customer_name: String,
    pub invoice_number: String,
    /// Already formatted with its currency.
    pub amount: String,
    pub due_date: String,
    pub days_past_due: String,
}

impl MessageTemplate {
    /// Accepts text whose every `{{…}}` names a known placeholder (spaces inside the braces
    /// are allowed: `{{ amount }}`).
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        if source.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        if source.chars().count() > MAX_TEMPLATE_LEN {
            return Err(TemplateError::TooLong);
        }
        let mut segments = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_owned()));
            }
            let after_open = &rest[open + 2..];
            let Some(close) = after_open.find("}}") else {
                let position = source[..source.len() - rest.len() + open].chars().count();
                return Err(TemplateError::Unclosed { position });
            };
            let name = after_open[..close].trim();
            let placeholder =
                Placeholder::from_name(name).ok_or_else(|| TemplateError::UnknownPlaceholder {
                    name: name.chars().take(40).collect(),
                    known: Placeholder::known_names(),
                })?;
            segments.push(Segment::Value(placeholder));
            rest = &after_open[close + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_owned()));
        }
        Ok(Self {
            source: source.to_owned(),
            segments,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The message with every placeholder replaced.
    pub fn render(&self, values: &TemplateValues) -> String {
        let mut message = String::with_capacity(self.source.len() + 32);
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => message.push_str(text),
                Segment::Value(placeholder) => message.push_str(match placeholder {
                    Placeholder::CustomerName => &values.customer_name,
                    Placeholder::InvoiceNumber => &values.invoice_number,
                    Placeholder::Amount => &values.amount,
                    Placeholder::DueDate => &values.due_date,
                    Placeholder::DaysPastDue => &values.days_past_due,
                }),
            }
        }
        message
    }
}

impl fmt::Display for MessageTemplate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> TemplateValues {
        TemplateValues {
            customer_name: "Acme Ltd".into(),
            invoice_number: "INV-7".into(),
            amount: "1250.00 CNY".into(),
            due_date: "2026-03-31".into(),
            days_past_due: "12".into(),
        }
    }

    #[test]
    fn renders_every_placeholder() {
        let template = MessageTemplate::parse(
            "Dear {{customer_name}}, invoice {{ invoice_number }} of {{amount}} was due on \
             {{due_date}} ({{days_past_due}} days ago).",
        )
        .unwrap();
        assert_eq!(
            template.render(&values()),
            "Dear Acme Ltd, invoice INV-7 of 1250.00 CNY was due on 2026-03-31 (12 days ago)."
        );
        assert_eq!(
            MessageTemplate::parse("no placeholders")
                .unwrap()
                .render(&values()),
            "no placeholders"
        );
    }

    #[test]
    fn unknown_or_unclosed_placeholders_are_refused() {
        assert!(matches!(
            MessageTemplate::parse("Pay {{amout}} now"),
            Err(TemplateError::UnknownPlaceholder { name, .. }) if name == "amout"
        ));
        assert_eq!(
            MessageTemplate::parse("Pay {{amount now"),
            Err(TemplateError::Unclosed { position: 4 })
        );
        assert_eq!(MessageTemplate::parse("  "), Err(TemplateError::Empty));
    }
}
