//! Rendering query results for people and scripts: an aligned table, CSV with a header, or a
//! JSON array of objects (one per row).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::RecorderError;

/// How [`format_batches`] renders rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// An aligned text table.
    #[default]
    Table,
    /// CSV with a header line; list columns are rendered as `[a, b]`.
    Csv,
    /// A JSON array with one object per row.
    Json,
}

/// Lists and other nested values rendered as text, for formats that only hold scalars.
fn flatten_nested(batch: &RecordBatch) -> Result<RecordBatch, RecorderError> {
    let opts = FormatOptions::default().with_null("");
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        if matches!(
            field.data_type(),
            DataType::List(_) | DataType::LargeList(_) | DataType::Struct(_) | DataType::Map(_, _)
        ) {
            let fmt = ArrayFormatter::try_new(col.as_ref(), &opts)?;
            let values: StringArray = (0..col.len())
                .map(|i| {
                    if col.is_null(i) {
                        None
                    } else {
                        Some(fmt.value(i).to_string())
                    }
                })
                .collect();
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            cols.push(Arc::new(values));
        } else {
            fields.push(field.as_ref().clone());
            cols.push(Arc::clone(col));
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// Renders query results.
pub fn format_batches(
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<String, RecorderError> {
    match format {
        OutputFormat::Table => Ok(arrow::util::pretty::pretty_format_batches(batches)?.to_string()),
        OutputFormat::Csv => {
            let mut out = Vec::new();
            {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                for b in batches {
                    w.write(&flatten_nested(b)?)?;
                }
            }
            String::from_utf8(out)
                .map_err(|e| RecorderError::Options(format!("csv output is not utf-8: {e}")))
        }
        OutputFormat::Json => {
            let mut out = Vec::new();
            {
                let mut w = arrow::json::ArrayWriter::new(&mut out);
                for b in batches {
                    w.write(b)?;
                }
                w.finish()?;
            }
            if out.is_empty() {
                return Ok("[]".to_string());
            }
            String::from_utf8(out)
                .map_err(|e| RecorderError::Options(format!("json output is not utf-8: {e}")))
        }
    }
}
