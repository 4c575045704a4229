//! Which node a backend is compiling, so that a refusal found anywhere below it
//! can name its place in the source without every helper passing a span along.

use rnnc_syntax::Span;
use std::cell::Cell;

thread_local! {
    static PLACE: Cell<Option<Span>> = const { Cell::new(None) };
}

/// Marks `span` as the place being compiled until the guard drops; a node
/// without one (a pass made it) keeps the enclosing node's (its scan's).
pub fn node_at(span: Option<Span>) -> impl Drop {
    struct Restore(Option<Span>);
    impl Drop for Restore {
        fn drop(&mut self) {
            PLACE.with(|p| p.set(self.0));
        }
    }
    let outer = PLACE.with(|p| p.get());
    if span.is_some() {
        PLACE.with(|p| p.set(span));
    }
    Restore(outer)
}

/// The span of the node being compiled on this thread, if it has one.
pub fn current() -> Option<Span> {
    PLACE.with(|p| p.get())
}

/// Why a backend cannot compile a graph (an op or a shape its plan cannot
/// express), and the span of the node being planned when it found out.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsupported(pub String, pub Option<Span>);

impl Unsupported {
    /// Why, at the place being planned ([`current`]).
    pub fn new(why: impl Into<String>) -> Self {
        Unsupported(why.into(), current())
    }

    /// The message for the person running `g`: why, then ` (at file:line:column)`
    /// where `g` knows its sources.
    pub fn message(&self, g: &crate::Graph) -> String {
        g.with_place(&self.0, self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rnnc_syntax::FileId;

    #[test]
    fn the_innermost_node_with_a_span_is_current_until_it_ends() {
        let (outer, inner) = (Span::new(FileId(0), 1, 2), Span::new(FileId(0), 5, 9));
        assert_eq!(current(), None);
        {
            let _scan = node_at(Some(outer));
            {
                let _made_by_a_pass = node_at(None);
                assert_eq!(current(), Some(outer));
                let _body_node = node_at(Some(inner));
                assert_eq!(current(), Some(inner));
            }
            assert_eq!(current(), Some(outer));
        }
        assert_eq!(current(), None);
    }
}
