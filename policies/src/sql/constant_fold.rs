//! Constant-true detection for `WHERE` / `ON` conditions: literals are folded through
//! `AND`/`OR`/`NOT`, comparisons, `IS [NOT] TRUE|FALSE|NULL`, `IN` lists, `BETWEEN` and casts.
//!
//! The fold is conservative in the direction that matters for policy: a condition that does not
//! depend on any row (no column reference) but whose value cannot be computed here
//! (`'a' < 'b'` under an unknown collation, `now() > '2000-01-01'`, `$1`) *may* be true for every
//! row, so it counts as constant-true. Only a condition that provably depends on a row, or that
//! folds to `false`/`NULL`, is a real filter.
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, Query, SetExpr, UnaryOperator, Value, Visit, Visitor,
};

/// A folded literal value.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Num(f64),
    Str(String),
}

/// What folding an expression established.
#[derive(Debug, Clone, PartialEq)]
enum Folded {
    /// Boolean true for every row.
    True,
    /// Boolean false for every row.
    False,
    /// SQL NULL for every row.
    Null,
    /// A known non-boolean literal.
    Lit(Literal),
    /// Same value for every row, but not computable here.
    Unknown,
    /// Depends on the row (mentions a column or a correlated subquery).
    Row,
}

/// Whether `condition` is true regardless of the row (or may be: see the module doc).
pub fn is_constant_true(condition: &Expr) -> bool {
    matches!(fold(condition), Folded::True | Folded::Unknown)
}

fn from_bool(b: bool) -> Folded {
    if b {
        Folded::True
    } else {
        Folded::False
    }
}

fn fold(expr: &Expr) -> Folded {
    match expr {
        Expr::Value(v) => fold_value(&v.value),
        Expr::Nested(inner) => fold(inner),
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::CompoundFieldAccess { .. } => {
            Folded::Row
        }
        Expr::UnaryOp { op, expr } => fold_unary(*op, fold(expr)),
        Expr::BinaryOp { left, op, right } => fold_binary(fold(left), op, fold(right)),
        Expr::IsTrue(e) => is_test(fold(e), |f| f == &Folded::True),
        Expr::IsNotTrue(e) => is_test(fold(e), |f| f != &Folded::True),
        Expr::IsFalse(e) => is_test(fold(e), |f| f == &Folded::False),
        Expr::IsNotFalse(e) => is_test(fold(e), |f| f != &Folded::False),
        Expr::IsNull(e) | Expr::IsUnknown(e) => is_test(fold(e), |f| f == &Folded::Null),
        Expr::IsNotNull(e) | Expr::IsNotUnknown(e) => is_test(fold(e), |f| f != &Folded::Null),
        Expr::Cast {
            kind: CastKind::Cast | CastKind::DoubleColon | CastKind::TryCast | CastKind::SafeCast,
            expr,
            data_type,
            ..
        } => fold_cast(fold(expr), data_type),
        Expr::InList {
            expr,
            list,
            negated,
        } => fold_in_list(expr, list, *negated),
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let ge = fold_binary(fold(expr), &BinaryOperator::GtEq, fold(low));
            let le = fold_binary(fold(expr), &BinaryOperator::LtEq, fold(high));
            let both = fold_binary(ge, &BinaryOperator::And, le);
            if *negated {
                fold_unary(UnaryOperator::Not, both)
            } else {
                both
            }
        }
        Expr::Subquery(query) => scalar_subquery(query),
        Expr::Exists { subquery, negated } => {
            if is_fromless_unfiltered(subquery) {
                from_bool(!*negated)
            } else {
                Folded::Row
            }
        }
        other => {
            if mentions_row(other) {
                Folded::Row
            } else {
                Folded::Unknown
            }
        }
    }
}

fn fold_value(value: &Value) -> Folded {
    match value {
        Value::Boolean(b) => from_bool(*b),
        Value::Null => Folded::Null,
        Value::Number(n, _) => n
            .parse::<f64>()
            .map(|x| Folded::Lit(Literal::Num(x)))
            .unwrap_or(Folded::Unknown),
        Value::SingleQuotedString(s)
        | Value::EscapedStringLiteral(s)
        | Value::UnicodeStringLiteral(s)
        | Value::NationalStringLiteral(s) => Folded::Lit(Literal::Str(s.clone())),
        Value::DollarQuotedString(d) => Folded::Lit(Literal::Str(d.value.clone())),
        // Placeholders and other literal forms: the same for every row, value unknown here.
        _ => Folded::Unknown,
    }
}

fn fold_unary(op: UnaryOperator, inner: Folded) -> Folded {
    match (op, inner) {
        (_, Folded::Row) => Folded::Row,
        (UnaryOperator::Not, Folded::True) => Folded::False,
        (UnaryOperator::Not, Folded::False) => Folded::True,
        (_, Folded::Null) => Folded::Null,
        (UnaryOperator::Minus, Folded::Lit(Literal::Num(n))) => Folded::Lit(Literal::Num(-n)),
        (UnaryOperator::Plus, Folded::Lit(Literal::Num(n))) => Folded::Lit(Literal::Num(n)),
        _ => Folded::Unknown,
    }
}

fn fold_binary(left: Folded, op: &BinaryOperator, right: Folded) -> Folded {
    match op {
        BinaryOperator::And => match (left, right) {
            (Folded::False, _) | (_, Folded::False) => Folded::False,
            (Folded::Row, _) | (_, Folded::Row) => Folded::Row,
            (Folded::True, Folded::True) => Folded::True,
            (Folded::Null, Folded::True | Folded::Null) | (Folded::True, Folded::Null) => {
                Folded::Null
            }
            _ => Folded::Unknown,
        },
        BinaryOperator::Or => match (left, right) {
            (Folded::True, _) | (_, Folded::True) => Folded::True,
            // A row-independent operand that may be true makes the whole condition possibly
            // true for every row.
            (Folded::Unknown | Folded::Lit(_), _) | (_, Folded::Unknown | Folded::Lit(_)) => {
                Folded::Unknown
            }
            (Folded::Row, _) | (_, Folded::Row) => Folded::Row,
            (Folded::False, Folded::False) => Folded::False,
            _ => Folded::Null,
        },
        BinaryOperator::Eq
        | BinaryOperator::NotEq
        | BinaryOperator::Lt
        | BinaryOperator::LtEq
        | BinaryOperator::Gt
        | BinaryOperator::GtEq => compare(left, op, right),
        _ => match (left, right) {
            (Folded::Row, _) | (_, Folded::Row) => Folded::Row,
            (Folded::Null, _) | (_, Folded::Null) => Folded::Null,
            _ => Folded::Unknown,
        },
    }
}

fn compare(left: Folded, op: &BinaryOperator, right: Folded) -> Folded {
    use std::cmp::Ordering;
    let ordering = match (&left, &right) {
        (Folded::Row, _) | (_, Folded::Row) => return Folded::Row,
        (Folded::Null, _) | (_, Folded::Null) => return Folded::Null,
        (Folded::Lit(Literal::Num(a)), Folded::Lit(Literal::Num(b))) => a.partial_cmp(b),
        (Folded::Lit(Literal::Str(a)), Folded::Lit(Literal::Str(b))) => {
            // Equality of strings does not depend on the collation; ordering does.
            match op {
                BinaryOperator::Eq | BinaryOperator::NotEq => Some(if a == b {
                    Ordering::Equal
                } else {
                    Ordering::Less
                }),
                _ => None,
            }
        }
        (Folded::True | Folded::False, Folded::True | Folded::False) => {
            Some((left == Folded::True).cmp(&(right == Folded::True)))
        }
        _ => None,
    };
    let Some(ordering) = ordering else {
        return Folded::Unknown;
    };
    from_bool(match op {
        BinaryOperator::Eq => ordering == Ordering::Equal,
        BinaryOperator::NotEq => ordering != Ordering::Equal,
        BinaryOperator::Lt => ordering == Ordering::Less,
        BinaryOperator::LtEq => ordering != Ordering::Greater,
        BinaryOperator::Gt => ordering == Ordering::Greater,
        _ => ordering != Ordering::Less,
    })
}

fn is_test(inner: Folded, test: impl Fn(&Folded) -> bool) -> Folded {
    match inner {
        Folded::Row => Folded::Row,
        Folded::Unknown | Folded::Lit(_) => Folded::Unknown,
        known => from_bool(test(&known)),
    }
}

fn fold_cast(inner: Folded, data_type: &DataType) -> Folded {
    match (inner, data_type) {
        (Folded::Row, _) => Folded::Row,
        (Folded::Null, _) => Folded::Null,
        (Folded::Lit(Literal::Str(s)), DataType::Boolean | DataType::Bool) => {
            parse_pg_bool(&s).map(from_bool).unwrap_or(Folded::Unknown)
        }
        (Folded::Lit(Literal::Num(n)), DataType::Boolean | DataType::Bool) => from_bool(n != 0.0),
        (Folded::Lit(Literal::Str(s)), t) if is_numeric_type(t) => s
            .trim()
            .parse::<f64>()
            .map(|n| Folded::Lit(Literal::Num(n)))
            .unwrap_or(Folded::Unknown),
        (folded @ Folded::Lit(Literal::Num(_)), t) if is_numeric_type(t) => folded,
        (folded @ (Folded::True | Folded::False), DataType::Boolean | DataType::Bool) => folded,
        (folded @ Folded::Lit(Literal::Str(_)), t) if is_text_type(t) => folded,
        _ => Folded::Unknown,
    }
}

fn is_numeric_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int(_)
            | DataType::Integer(_)
            | DataType::SmallInt(_)
            | DataType::BigInt(_)
            | DataType::Int2(_)
            | DataType::Int4(_)
            | DataType::Int8(_)
            | DataType::Numeric(_)
            | DataType::Decimal(_)
            | DataType::Real
            | DataType::Float4
            | DataType::Float8
            | DataType::DoublePrecision
    )
}

fn is_text_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::CharacterVarying(_)
    )
}

/// PostgreSQL's boolean input syntax (`t`, `yes`, `on`, `1`, unique prefixes, any case).
fn parse_pg_bool(s: &str) -> Option<bool> {
    let s = s.trim().to_ascii_lowercase();
    if s.is_empty() {
        return None;
    }
    let prefix_of = |word: &str| word.starts_with(&s);
    if prefix_of("true") || prefix_of("yes") || s == "on" || s == "1" {
        Some(true)
    } else if prefix_of("false") || prefix_of("no") || s == "off" || s == "0" {
        Some(false)
    } else {
        None
    }
}

fn fold_in_list(expr: &Expr, list: &[Expr], negated: bool) -> Folded {
    let needle = fold(expr);
    let mut result = Folded::False;
    for item in list {
        let eq = compare(needle.clone(), &BinaryOperator::Eq, fold(item));
        result = fold_binary(result, &BinaryOperator::Or, eq);
    }
    if negated {
        fold_unary(UnaryOperator::Not, result)
    } else {
        result
    }
}

/// A query with no FROM, WHERE, HAVING or set operation (`SELECT true`).
fn is_fromless_unfiltered(query: &Query) -> bool {
    match query.body.as_ref() {
        SetExpr::Select(select) => {
            select.from.is_empty() && select.selection.is_none() && select.having.is_none()
        }
        SetExpr::Values(_) => true,
        _ => false,
    }
}

fn scalar_subquery(query: &Query) -> Folded {
    if let SetExpr::Select(select) = query.body.as_ref() {
        if is_fromless_unfiltered(query) {
            if let [sqlparser::ast::SelectItem::UnnamedExpr(e)
            | sqlparser::ast::SelectItem::ExprWithAlias { expr: e, .. }] =
                select.projection.as_slice()
            {
                return fold(e);
            }
        }
    }
    Folded::Row
}

/// Whether an expression mentions a column or a subquery (which may be correlated).
fn mentions_row(expr: &Expr) -> bool {
    struct RowFinder;
    impl Visitor for RowFinder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Identifier(_)
                | Expr::CompoundIdentifier(_)
                | Expr::CompoundFieldAccess { .. }
                | Expr::Subquery(_)
                | Expr::Exists { .. }
                | Expr::InSubquery { .. } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    expr.visit(&mut RowFinder).is_break()
}
