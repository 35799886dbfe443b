//! Topic names: shared, cheap to clone, checked against the configured bounds.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::config::Config;
use crate::error::Error;

/// A topic name: non-empty UTF-8 of at most [`Config::max_topic_len`] bytes. Clones share one
/// allocation, so every delivery of a message names its topic without a copy.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// Checks `name` against `config`'s bounds.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyTopic`], [`Error::TopicTooLong`].
    pub fn new(name: &str, config: &Config) -> Result<Topic, Error> {
        check(name, config)?;
        Ok(Topic(name.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a topic name without allocating.
pub(crate) fn check(name: &str, config: &Config) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::EmptyTopic);
    }
    if name.len() > config.max_topic_len() {
        return Err(Error::TopicTooLong {
            len: name.len(),
            limit: config.max_topic_len(),
        });
    }
    Ok(())
}

impl Deref for Topic {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Topic {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_name_is_accepted_at_the_length_limit_and_refused_one_past_it() {
        let mut config = Config::default();
        config.set_max_topic_len(4);
        assert_eq!(Topic::new("room", &config).unwrap().as_str(), "room");
        assert_eq!(
            Topic::new("rooms", &config),
            Err(Error::TopicTooLong { len: 5, limit: 4 })
        );
        assert_eq!(Topic::new("", &config), Err(Error::EmptyTopic));
    }
}
