//! The generic walk: every relation, write and function call anywhere in one
//! statement's parse tree.
//!
//! pg_query's own helpers (`ParseResult::tables()`, `NodeEnum::nodes()`) visit
//! a hand-picked subset of node types, so a relation inside a clause they do
//! not know is invisible to them. Every pg_query protobuf type derives
//! `serde::Serialize`, so the tree is serialised to a `serde_json::Value` and
//! walked field by field: nothing can hide in a field this code has never
//! heard of. Node types are recognised by their `Node` oneof tag and, where the
//! protobuf embeds a message without a tag (`InsertStmt.relation`,
//! `CallStmt.funccall`, …), by the fields only that message has.
//!
//! Depth: the recursion here follows the tree, whose depth the parser bounds;
//! it runs on the stack `ANALYSIS_STACK` (mod.rs) provides.

use serde_json::{Map, Value};

use crate::plugins::bindings::types::{FunctionCall, TableRef, TableWrite, WriteAction};

/// What the walk found in one statement.
#[derive(Default)]
pub(crate) struct Facts {
    pub reads: Vec<TableRef>,
    pub writes: Vec<TableWrite>,
    pub functions: Vec<FunctionCall>,
    /// A data-modifying statement inside a WITH clause.
    pub writable_cte: bool,
    /// A nested statement that runs SQL out of sight (`CREATE TABLE … AS
    /// EXECUTE p`, a `DO` inside a rule's actions, …).
    pub nested_dynamic: bool,
    /// `FOR UPDATE`/`FOR SHARE` anywhere, subqueries included: row locks.
    pub row_locks: bool,
    /// A function bound into an operator, cast, aggregate, type, … that will
    /// run whenever that object is used.
    pub bound_functions: bool,
}

/// Fields whose relations are written by the statement that owns them, and how.
/// Every other relation in the tree is read.
const WRITE_TARGETS: &[(&str, &str, WriteAction)] = &[
    ("SelectStmt", "into_clause", WriteAction::SelectInto),
    ("CreateTableAsStmt", "into", WriteAction::Create),
    ("CreateStmt", "relation", WriteAction::Create),
    ("CreateForeignTableStmt", "base_stmt", WriteAction::Create),
    ("ViewStmt", "view", WriteAction::Create),
    ("CreateSeqStmt", "sequence", WriteAction::Create),
    ("AlterSeqStmt", "sequence", WriteAction::Alter),
    ("AlterTableStmt", "relation", WriteAction::Alter),
    ("RenameStmt", "relation", WriteAction::Alter),
    ("AlterObjectSchemaStmt", "relation", WriteAction::Alter),
    ("AlterOwnerStmt", "relation", WriteAction::Alter),
    // Rules, triggers and policies change what later reads and writes of the
    // table do.
    ("RuleStmt", "relation", WriteAction::Alter),
    ("CreateTrigStmt", "relation", WriteAction::Alter),
    ("CreatePolicyStmt", "table", WriteAction::Alter),
    ("AlterPolicyStmt", "table", WriteAction::Alter),
    ("TruncateStmt", "relations", WriteAction::Truncate),
    ("IndexStmt", "relation", WriteAction::Other),
    ("VacuumStmt", "rels", WriteAction::Other),
    ("ClusterStmt", "relation", WriteAction::Other),
    ("ReindexStmt", "relation", WriteAction::Other),
    ("RefreshMatViewStmt", "relation", WriteAction::Other),
    // An exclusive lock blocks every writer and reader: guard it like a write.
    ("LockStmt", "relations", WriteAction::Other),
    ("GrantStmt", "objects", WriteAction::Other),
];

/// Collects the facts of one statement, given as the serialised `Node`.
pub(crate) fn collect(stmt: &Value) -> Facts {
    let mut walker = Walker {
        facts: Facts::default(),
        scopes: Vec::new(),
    };
    walker.value(stmt, Mode::Read);
    walker.facts
}

#[derive(Clone, Copy)]
enum Mode {
    Read,
    Write(WriteAction),
}

struct Walker {
    facts: Facts,
    /// CTE names visible at this point, innermost last.
    scopes: Vec<Vec<String>>,
}

impl Walker {
    fn value(&mut self, v: &Value, mode: Mode) {
        match v {
            Value::Object(obj) => self.object(obj, mode),
            Value::Array(items) => items.iter().for_each(|item| self.value(item, mode)),
            _ => {}
        }
    }

    fn object(&mut self, obj: &Map<String, Value>, mode: Mode) {
        // A `Node` wrapper: {"node": {"<Type>": {fields}}}.
        if obj.len() == 1
            && let Some(Value::Object(inner)) = obj.get("node")
        {
            if let Some((tag, Value::Object(body))) = inner.iter().next()
                && inner.len() == 1
            {
                self.node(tag, body, mode);
            } else {
                self.fields("", inner, mode, &[]);
            }
            return;
        }
        // Messages embedded without a tag, recognised by their own fields.
        if is_range_var(obj) {
            self.range_var(obj, mode);
        } else if is_func_call(obj) {
            self.func_call(obj);
        } else {
            self.fields("", obj, mode, &[]);
        }
    }

    fn node(&mut self, tag: &str, body: &Map<String, Value>, mode: Mode) {
        match tag {
            "RangeVar" => self.range_var(body, mode),
            "FuncCall" => self.func_call(body),
            "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" => self.dml(tag, body),
            "CopyStmt" => {
                let action = if body.get("is_from").and_then(Value::as_bool) == Some(true) {
                    Mode::Write(WriteAction::CopyFrom)
                } else {
                    Mode::Read
                };
                if let Some(rel) = body.get("relation") {
                    self.value(rel, action);
                }
                self.fields(tag, body, Mode::Read, &["relation"]);
            }
            "CreateTrigStmt" => {
                // The trigger function runs on every later write; report it as
                // called, with its literal arguments.
                if let Some(call) = function_from(body.get("funcname"), body.get("args")) {
                    self.facts.functions.push(call);
                }
                self.fields(tag, body, Mode::Read, &[]);
            }
            "AIndirection" => {
                self.attribute_calls(body);
                self.fields(tag, body, Mode::Read, &[]);
            }
            // Functions bound into operators, casts, aggregates, types,
            // operator classes, conversions, languages and wrappers run
            // whenever those are used later: report them as called here.
            "DefineStmt" | "CreateFdwStmt" | "AlterFdwStmt" => {
                for option in ["definition", "func_options"] {
                    for d in body
                        .get(option)
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(call) = bound_function(d) {
                            self.facts.functions.push(call);
                            self.facts.bound_functions = true;
                        }
                    }
                }
                self.fields(tag, body, Mode::Read, &[]);
            }
            "CreateCastStmt"
            | "CreateTransformStmt"
            | "CreateOpClassItem"
            | "CreateEventTrigStmt"
            | "CreateConversionStmt"
            | "CreatePlangStmt" => {
                let is_function_item = tag != "CreateOpClassItem"
                    || body.get("itemtype").and_then(Value::as_i64) == Some(OPCLASS_ITEM_FUNCTION);
                if is_function_item {
                    for field in BOUND_FUNCTION_FIELDS {
                        let names = match body.get(*field) {
                            Some(Value::Object(with_args)) => with_args.get("objname"),
                            other => other,
                        };
                        if let Some(call) = function_from(names, None) {
                            self.facts.functions.push(call);
                            self.facts.bound_functions = true;
                        }
                    }
                }
                self.fields(tag, body, Mode::Read, &[]);
            }
            "ExecuteStmt" | "DoStmt" | "CallStmt" => {
                self.facts.nested_dynamic = true;
                self.fields(tag, body, Mode::Read, &[]);
            }
            "SelectStmt"
                if body
                    .get("locking_clause")
                    .and_then(Value::as_array)
                    .is_some_and(|l| !l.is_empty()) =>
            {
                self.facts.row_locks = true;
                self.fields(tag, body, Mode::Read, &[]);
            }
            // Write targets reach relations through these wrappers.
            "VacuumRelation" | "List" => self.fields(tag, body, mode, &[]),
            _ => self.fields(tag, body, Mode::Read, &[]),
        }
    }

    /// Walks every field of a message, with the message's WITH clause in
    /// scope. Write-target fields of `tag` are walked in write mode, the rest
    /// in `inherited` mode (so that an untagged wrapper such as `IntoClause`
    /// passes its parent's mode on to its RangeVar).
    fn fields(&mut self, tag: &str, body: &Map<String, Value>, inherited: Mode, skip: &[&str]) {
        let pushed = self.enter_with(body);
        for (field, value) in body {
            if field == "with_clause" || skip.contains(&field.as_str()) {
                continue;
            }
            let mode = WRITE_TARGETS
                .iter()
                .find(|(t, f, _)| *t == tag && f == field)
                .map_or(inherited, |(_, _, action)| Mode::Write(*action));
            self.value(value, mode);
        }
        if pushed {
            self.scopes.pop();
        }
    }

    /// Walks a WITH clause's CTEs and leaves their names in scope for the rest
    /// of the statement. Returns whether a scope was pushed.
    fn enter_with(&mut self, body: &Map<String, Value>) -> bool {
        let Some(Value::Object(with)) = body.get("with_clause") else {
            return false;
        };
        let recursive = with.get("recursive").and_then(Value::as_bool) == Some(true);
        let ctes: Vec<(&str, &Map<String, Value>)> = with
            .get("ctes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|n| tagged(n, "CommonTableExpr"))
            .map(|cte| {
                (
                    cte.get("ctename").and_then(Value::as_str).unwrap_or(""),
                    cte,
                )
            })
            .collect();
        // A non-recursive CTE sees only the CTEs before it: a reference to a
        // later (or its own) name is a real table, and must be reported as one.
        self.scopes.push(if recursive {
            ctes.iter().map(|(name, _)| (*name).to_owned()).collect()
        } else {
            Vec::new()
        });
        for (name, cte) in ctes {
            for (field, value) in cte {
                if field == "ctequery" {
                    self.cte_query(value);
                } else {
                    self.value(value, Mode::Read);
                }
            }
            if !recursive && let Some(scope) = self.scopes.last_mut() {
                scope.push(name.to_owned());
            }
        }
        true
    }

    fn cte_query(&mut self, query: &Value) {
        let writes_before = self.facts.writes.len();
        self.value(query, Mode::Read);
        if self.facts.writes.len() > writes_before {
            self.facts.writable_cte = true;
        }
    }

    fn dml(&mut self, tag: &str, body: &Map<String, Value>) {
        let (action, has_where) = match tag {
            "InsertStmt" => (WriteAction::Insert, false),
            "UpdateStmt" => (WriteAction::Update, present(body, "where_clause")),
            "DeleteStmt" => (WriteAction::Delete, present(body, "where_clause")),
            // MERGE always has its ON condition.
            _ => (WriteAction::Merge, present(body, "join_condition")),
        };
        if let Some(Value::Object(rel)) = body.get("relation")
            && let Some(table) = table_ref(rel)
        {
            // UPDATE/DELETE/MERGE read the rows they filter; INSERT reads
            // existing rows only through RETURNING or ON CONFLICT.
            let reads = action != WriteAction::Insert
                || body
                    .get("returning_list")
                    .and_then(Value::as_array)
                    .is_some_and(|r| !r.is_empty())
                || present(body, "on_conflict_clause");
            if reads {
                self.facts.reads.push(table.clone());
            }
            self.facts.writes.push(TableWrite {
                table,
                action,
                has_where,
            });
        }
        self.fields(tag, body, Mode::Read, &["relation"]);
    }

    fn range_var(&mut self, rv: &Map<String, Value>, mode: Mode) {
        let Some(table) = table_ref(rv) else { return };
        match mode {
            Mode::Write(action) => self.facts.writes.push(TableWrite {
                table,
                action,
                has_where: false,
            }),
            Mode::Read => {
                let is_cte = table.schema.is_none()
                    && self.scopes.iter().flatten().any(|cte| *cte == table.name);
                if !is_cte {
                    self.facts.reads.push(table);
                }
            }
        }
        // The alias and anything else hanging off the RangeVar.
        self.fields(
            "RangeVar",
            rv,
            Mode::Read,
            &["relname", "schemaname", "catalogname"],
        );
    }

    /// `(expr).name` selects a field of a composite value or, in attribute
    /// notation, calls function `name` on `expr`: PostgreSQL tries the
    /// field first, and only the catalog knows which applies, so each
    /// selected name is reported as a possible call
    /// (`('/etc/passwd'::text).pg_read_file` reads the file).
    fn attribute_calls(&mut self, body: &Map<String, Value>) {
        let items = body.get("indirection").and_then(Value::as_array);
        for (i, item) in items.into_iter().flatten().enumerate() {
            let Some(name) = tagged(item, "String").and_then(|s| s.get("sval")?.as_str()) else {
                continue;
            };
            // Only the first selection applies to `arg` itself.
            let arg = if i == 0 {
                body.get("arg").and_then(literal)
            } else {
                None
            };
            self.facts.functions.push(FunctionCall {
                schema: None,
                name: name.to_owned(),
                literal_args: vec![arg],
            });
        }
    }

    fn func_call(&mut self, call: &Map<String, Value>) {
        if let Some(f) = function_from(call.get("funcname"), call.get("args")) {
            self.facts.functions.push(f);
        }
        // Arguments, FILTER, OVER, ORDER BY of the call may hold more calls
        // and subqueries.
        self.fields("FuncCall", call, Mode::Read, &["funcname"]);
    }
}

/// `OPCLASS_ITEM_FUNCTION` in PostgreSQL's parsenodes.h.
const OPCLASS_ITEM_FUNCTION: i64 = 2;

/// Fields naming a bound function: a name list, or an `ObjectWithArgs`.
const BOUND_FUNCTION_FIELDS: &[&str] = &[
    "func",        // CREATE CAST … WITH FUNCTION
    "fromsql",     // CREATE TRANSFORM
    "tosql",       //
    "name",        // CREATE OPERATOR CLASS … FUNCTION n f(…)
    "funcname",    // CREATE EVENT TRIGGER … EXECUTE FUNCTION
    "func_name",   // CREATE CONVERSION … FROM f
    "plhandler",   // CREATE LANGUAGE … HANDLER / INLINE / VALIDATOR
    "plinline",    //
    "plvalidator", //
];

/// Options of CREATE OPERATOR / AGGREGATE / TYPE / TEXT SEARCH PARSER and
/// TEMPLATE and of foreign-data wrappers whose value is a function.
const FUNCTION_OPTIONS: &[&str] = &[
    "function",
    "procedure",
    "restrict",
    "join",
    "sfunc",
    "finalfunc",
    "combinefunc",
    "serialfunc",
    "deserialfunc",
    "msfunc",
    "minvfunc",
    "mfinalfunc",
    "input",
    "output",
    "receive",
    "send",
    "typmod_in",
    "typmod_out",
    "analyze",
    "subscript",
    "start",
    "gettoken",
    "end",
    "headline",
    "lextypes",
    "init",
    "lexize",
    "handler",
    "validator",
];

/// The function a `name = value` option binds, if it is a function option.
fn bound_function(option: &Value) -> Option<FunctionCall> {
    let d = tagged(option, "DefElem")?;
    let defname = d.get("defname")?.as_str()?;
    if !FUNCTION_OPTIONS.contains(&defname.to_ascii_lowercase().as_str()) {
        return None;
    }
    let arg = d.get("arg")?;
    let names = if let Some(type_name) = tagged(arg, "TypeName") {
        type_name.get("names")
    } else if let Some(list) = tagged(arg, "List") {
        list.get("items")
    } else {
        // A bare name: `SFUNC = f` can also arrive as a String node.
        let name = tagged(arg, "String")?.get("sval")?.as_str()?;
        return Some(FunctionCall {
            schema: None,
            name: name.to_owned(),
            literal_args: Vec::new(),
        });
    };
    function_from(names, None)
}

fn present(body: &Map<String, Value>, field: &str) -> bool {
    body.get(field).is_some_and(|v| !v.is_null())
}

/// The body of `node` if it is a `Node` wrapper of type `tag`.
pub(crate) fn tagged<'a>(node: &'a Value, tag: &str) -> Option<&'a Map<String, Value>> {
    node.get("node")?.get(tag)?.as_object()
}

fn is_range_var(obj: &Map<String, Value>) -> bool {
    obj.contains_key("relname") && obj.contains_key("inh")
}

fn is_func_call(obj: &Map<String, Value>) -> bool {
    obj.contains_key("funcname") && obj.contains_key("agg_star")
}

fn table_ref(rv: &Map<String, Value>) -> Option<TableRef> {
    let name = rv.get("relname")?.as_str()?.to_owned();
    let schema = rv
        .get("schemaname")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Some(TableRef { schema, name })
}

/// The strings of a name list (`[Node{String}]`), e.g. a qualified name.
pub(crate) fn name_list(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|n| tagged(n, "String")?.get("sval")?.as_str())
        .map(str::to_owned)
        .collect()
}

fn function_from(funcname: Option<&Value>, args: Option<&Value>) -> Option<FunctionCall> {
    let mut parts = name_list(funcname);
    let name = parts.pop()?;
    let literal_args = args
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(literal)
        .collect();
    Some(FunctionCall {
        schema: parts.pop(),
        name,
        literal_args,
    })
}

/// The text of a string, numeric or boolean constant (also under a cast, as in
/// `'admin'::text`); `None` for anything else, NULL included.
pub(crate) fn literal(node: &Value) -> Option<String> {
    if let Some(cast) = tagged(node, "TypeCast") {
        return literal(cast.get("arg")?);
    }
    // Trigger arguments and some option values are bare String nodes.
    if let Some(s) = tagged(node, "String") {
        return s.get("sval")?.as_str().map(str::to_owned);
    }
    let val = tagged(node, "AConst")?.get("val")?.as_object()?;
    let (kind, inner) = val.iter().next()?;
    match kind.as_str() {
        "Sval" => inner.get("sval")?.as_str().map(str::to_owned),
        "Ival" => inner.get("ival")?.as_i64().map(|i| i.to_string()),
        "Fval" => inner.get("fval")?.as_str().map(str::to_owned),
        "Boolval" => inner.get("boolval")?.as_bool().map(|b| b.to_string()),
        "Bsval" => inner.get("bsval")?.as_str().map(str::to_owned),
        _ => None,
    }
}
