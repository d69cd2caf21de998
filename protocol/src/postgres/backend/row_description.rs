//! RowDescription (B): the columns of the rows that follow.

use bytes::{BufMut, BytesMut};

use crate::postgres::message_writer::{put_count_i16, put_cstr, write_message};
use crate::postgres::tags::backend::ROW_DESCRIPTION;
use crate::postgres::{Frame, ProtocolError};

/// One column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    /// Column name.
    pub name: String,
    /// OID of the source table, or 0.
    pub table_oid: u32,
    /// Attribute number in that table, or 0.
    pub column_id: i16,
    /// Type OID.
    pub type_oid: u32,
    /// Type size (`pg_type.typlen`).
    pub type_size: i16,
    /// Type modifier (`pg_attribute.atttypmod`).
    pub type_modifier: i32,
    /// Format code (0 text, 1 binary).
    pub format: i16,
}

/// The column list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDescription {
    /// Columns in order.
    pub fields: Vec<FieldDescription>,
}

impl RowDescription {
    /// Decodes a `T` frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("RowDescription", ROW_DESCRIPTION)?;
        let n = r.count_i16("field count")?;
        let mut fields = Vec::new();
        for _ in 0..n {
            fields.push(FieldDescription {
                name: r.cstr("field name")?,
                table_oid: r.u32("table oid")?,
                column_id: r.i16("column number")?,
                type_oid: r.u32("type oid")?,
                type_size: r.i16("type size")?,
                type_modifier: r.i32("type modifier")?,
                format: r.i16("format code")?,
            });
        }
        r.finish()?;
        Ok(Self { fields })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, ROW_DESCRIPTION, |b| {
            put_count_i16(b, self.fields.len());
            for f in &self.fields {
                put_cstr(b, &f.name);
                b.put_u32(f.table_oid);
                b.put_i16(f.column_id);
                b.put_u32(f.type_oid);
                b.put_i16(f.type_size);
                b.put_i32(f.type_modifier);
                b.put_i16(f.format);
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let msg = RowDescription {
            fields: vec![FieldDescription {
                name: "id".into(),
                table_oid: 16384,
                column_id: 1,
                type_oid: 23,
                type_size: 4,
                type_modifier: -1,
                format: 0,
            }],
        };
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        assert_eq!(RowDescription::decode(&frame).unwrap(), msg);
    }
}
