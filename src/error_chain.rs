//! The causes an error carries, on one line. reqwest's own message is "error sending request";
//! what an operator can act on (connection refused, timed out, certificate unknown) is in its
//! sources, which every outgoing call (JWKS, session check, Telnyx, Supabase admin) logs.

/// `": cause: inner cause"` for each source of `error`, outermost first; empty without one. The
/// error's own message is left to the caller, which may word it without the URL.
pub fn causes(error: &dyn std::error::Error) -> String {
    let mut text = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::causes;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|inner| inner as _)
        }
    }

    #[test]
    fn lists_every_source_outermost_first_without_the_error_itself() {
        let error = Layer(
            "error sending request",
            Some(Box::new(Layer(
                "client error (Connect)",
                Some(Box::new(Layer("Connection refused", None))),
            ))),
        );
        assert_eq!(
            causes(&error),
            ": client error (Connect): Connection refused"
        );
        assert_eq!(causes(&Layer("alone", None)), "");
    }
}
