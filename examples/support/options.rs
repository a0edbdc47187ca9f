//! Command-line options: `--flag VALUE` pairs and `--switch`es, checked
//! against the ones a mode knows.

use std::fmt;
use std::str::FromStr;

/// Why the options were refused.
#[derive(Debug)]
pub(crate) enum OptionError {
    /// Not an option this mode knows.
    Unknown(String),
    /// A flag that takes a value came last.
    NoValue(String),
    /// A value that does not parse.
    Bad { flag: String, value: String },
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(option) => write!(f, "unknown option {option:?}"),
            Self::NoValue(flag) => write!(f, "{flag} needs a value"),
            Self::Bad { flag, value } => write!(f, "bad {flag} {value:?}"),
        }
    }
}

impl std::error::Error for OptionError {}

/// The options given, in order: each flag with its value, each switch
/// alone.
pub(crate) struct Options<'a>(Vec<(&'a str, Option<&'a str>)>);

impl<'a> Options<'a> {
    /// Reads `args`: each of `valued` takes the argument after it as its
    /// value, each of `switches` stands alone; anything else is refused.
    pub(crate) fn parse(
        args: &[&'a str],
        valued: &[&str],
        switches: &[&str],
    ) -> Result<Self, OptionError> {
        let mut found = Vec::new();
        let mut rest = args.iter();
        while let Some(&arg) = rest.next() {
            if switches.contains(&arg) {
                found.push((arg, None));
            } else if valued.contains(&arg) {
                let value = rest
                    .next()
                    .ok_or_else(|| OptionError::NoValue(arg.to_owned()))?;
                found.push((arg, Some(*value)));
            } else {
                return Err(OptionError::Unknown(arg.to_owned()));
            }
        }
        Ok(Self(found))
    }

    /// The value of `flag`, if given (the first, if given twice).
    pub(crate) fn value(&self, flag: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find_map(|&(option, value)| if option == flag { value } else { None })
    }

    /// The value of `flag`, parsed, if given.
    pub(crate) fn parsed<T: FromStr>(&self, flag: &str) -> Result<Option<T>, OptionError> {
        self.value(flag)
            .map(|value| {
                value.parse().map_err(|_| OptionError::Bad {
                    flag: flag.to_owned(),
                    value: value.to_owned(),
                })
            })
            .transpose()
    }

    /// Whether `switch` was given.
    #[allow(dead_code, reason = "not every example has switches")]
    pub(crate) fn has(&self, switch: &str) -> bool {
        self.0.iter().any(|&(option, _)| option == switch)
    }
}
