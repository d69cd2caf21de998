//! A macro for the messages that are only a type byte and a length of 4 (Sync, Flush,
//! ParseComplete, ...): decoding checks the type and that the body is empty.

/// Defines a unit struct for an empty-bodied message with `decode`, `encode` and a round-trip test.
macro_rules! empty_message {
    ($(#[$doc:meta])* $name:ident, $tag:expr, $label:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;

        impl $name {
            /// Decodes the message from `frame`; its body must be empty.
            pub fn decode(
                frame: &$crate::postgres::Frame,
            ) -> Result<Self, $crate::postgres::ProtocolError> {
                frame.reader($label, $tag)?.finish()?;
                Ok($name)
            }

            /// Appends the encoded message to `buf`.
            pub fn encode(&self, buf: &mut ::bytes::BytesMut) {
                $crate::postgres::message_writer::write_message(buf, $tag, |_| {});
            }
        }

        #[cfg(test)]
        #[allow(clippy::unwrap_used, clippy::indexing_slicing)]
        mod tests {
            use super::*;

            #[test]
            fn round_trip_and_rejects_a_body() {
                let mut buf = ::bytes::BytesMut::new();
                $name.encode(&mut buf);
                assert_eq!(buf.len(), 5);
                let frame = $crate::postgres::Frame::from_encoded(buf.freeze(), 100).unwrap();
                assert_eq!($name::decode(&frame).unwrap(), $name);
                let mut raw = vec![$tag, 0, 0, 0, 5, 0];
                let long = $crate::postgres::Frame::from_encoded(raw.clone().into(), 100).unwrap();
                assert!($name::decode(&long).is_err());
                raw[0] = raw[0].wrapping_add(1);
                raw.truncate(5);
                raw[4] = 4;
                let other = $crate::postgres::Frame::from_encoded(raw.into(), 100).unwrap();
                assert!($name::decode(&other).is_err());
            }
        }
    };
}

pub(crate) use empty_message;
