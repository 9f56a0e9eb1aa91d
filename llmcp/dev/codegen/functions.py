"""The reviewed tables of functions and operators that nullability inference trusts.

Each entry was checked one by one against PostgreSQL's documentation and
behaviour: a name missing here is treated as able to return NULL, which is
always safe. ``pg_proc.proisstrict`` is not enough: it says NULL in gives NULL
out, not that non-null in gives non-null out.
"""

from __future__ import annotations

# Functions that return non-null whenever every argument is non-null (reviewed
# one by one: none of them returns NULL for a non-null input).
STRICT_NON_NULL = frozenset(
    {
        # text
        "lower", "upper", "initcap", "length", "char_length", "character_length",
        "octet_length", "bit_length", "substr", "replace", "translate", "btrim",
        "ltrim", "rtrim", "left", "right", "lpad", "rpad", "repeat", "reverse",
        "position", "strpos", "starts_with", "split_part", "md5", "sha256", "sha512",
        "encode", "decode", "quote_ident", "quote_literal", "to_hex", "ascii", "chr",
        "string_to_array", "array_to_string", "normalize", "unistr",
        # numbers
        "abs", "round", "trunc", "ceil", "ceiling", "floor", "sign", "mod", "power",
        "sqrt", "cbrt", "exp", "ln", "log", "log10", "div", "width_bucket", "gcd", "lcm",
        "float8", "numeric", "int4", "int8", "text",
        # times
        "date_trunc", "date_part", "extract", "date_bin", "to_char", "to_timestamp",
        "make_date", "make_time", "make_timestamp", "make_timestamptz", "make_interval",
        "timezone", "age", "justify_days", "justify_hours", "justify_interval",
        "isfinite",
        # json
        "to_jsonb", "to_json", "jsonb_typeof", "json_typeof", "jsonb_array_length",
        "json_array_length", "jsonb_set", "jsonb_insert", "jsonb_strip_nulls",
        "json_strip_nulls", "jsonb_pretty", "jsonb_exists", "jsonb_contains",
        # arrays
        "cardinality", "array_append", "array_prepend", "array_cat", "array_remove",
        "array_replace", "array_fill",
        # set-returning functions in a select list yield non-null values
        "generate_series", "generate_subscripts",
    }
)  # fmt: skip
# Functions that never return NULL, whatever their arguments.
ALWAYS_NON_NULL = frozenset(
    {
        "concat", "jsonb_build_object", "jsonb_build_array", "json_build_object",
        "json_build_array", "num_nulls", "num_nonnulls", "now", "clock_timestamp",
        "statement_timestamp", "transaction_timestamp", "random", "gen_random_uuid",
        "uuidv4", "uuidv7", "pg_backend_pid", "txid_current", "version",
    }
)  # fmt: skip
# Non-null when the first argument (the separator, the format) is non-null.
FIRST_ARGUMENT_NON_NULL = frozenset({"concat_ws", "format"})
# Documented as able to return NULL for non-null arguments (kept out of the
# tables above on purpose): nullif (an expression), regexp_match, regexp_substr,
# array_position, array_length, array_lower, array_upper, jsonb_extract_path,
# jsonb_path_query_first, substring(x FROM pattern), current_schema, ->, ->>, #>, #>>.

# Aggregates that return NULL only for an empty input or when every input is NULL.
AGGREGATES_NULL_IF_ALL_NULL = frozenset(
    {"min", "max", "sum", "avg", "bool_and", "bool_or", "every", "bit_and", "bit_or",
     "bit_xor", "string_agg"}
)  # fmt: skip
# Aggregates that return NULL only for an empty input.
AGGREGATES_NULL_IF_EMPTY = frozenset(
    {"array_agg", "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg"}
)
AGGREGATES = (
    AGGREGATES_NULL_IF_ALL_NULL
    | AGGREGATES_NULL_IF_EMPTY
    | {"count", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp",
       "percentile_cont", "percentile_disc", "mode", "corr", "covar_pop", "covar_samp",
       "regr_slope", "regr_intercept", "regr_count", "xmlagg", "any_value"}
)  # fmt: skip
WINDOW_NON_NULL = frozenset(
    {"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile"}
)
# Operators that return non-null for non-null operands.
STRICT_OPERATORS = frozenset(
    {"+", "-", "*", "/", "%", "^", "||", "=", "<>", "!=", "<", ">", "<=", ">=", "~", "~*",
     "!~", "!~*", "~~", "~~*", "!~~", "!~~*", "@>", "<@", "?", "?|", "?&", "&&", "#-",
     "|/", "@", "&", "|", "<<", ">>"}
)  # fmt: skip
COMPARISONS = frozenset({"=", "<>", "!=", "<", ">", "<=", ">="})
BUILTIN_SCHEMAS = frozenset({"pg_catalog"})
