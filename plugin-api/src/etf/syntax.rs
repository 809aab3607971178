//! Erlang term syntax → [`Term`]: the reader for what [`Term`]'s `Display` writes, so an
//! operator can type a message on a command line (`host ctl send NAME '{incr, 5}'`) and
//! read replies in the same notation. The grammar is documented on [`parse`].

use std::fmt;
use std::str::FromStr;

use super::atom::write_atom_display;
use super::term::{
    export_fun_bytes, fun_info, BigInt, ExternalPid, ExternalPort, ExternalRef, Term,
};
use super::MAX_DEPTH;

/// Longest decimal (or other non-power-of-two base) integer literal accepted.
///
/// Converting such digits to binary costs time proportional to the square of their
/// number; capping it keeps parsing linear in the input. `Display` prints integers of up
/// to 256 bytes (617 decimal digits) in decimal and larger ones in base 16, which has no
/// limit, so every printed integer parses.
pub const MAX_DECIMAL_DIGITS: usize = 1000;

/// Parses one term in Erlang syntax.
///
/// This is the inverse of `Term`'s `Display`: `parse(&t.to_string()) == Ok(t)` for every
/// term [`Term::decode`] can return. Errors say where (byte offset, line and column) and
/// what was expected and found.
///
/// The accepted text is what the Erlang shell accepts for a literal term, plus the
/// notations `Display` uses for what Erlang cannot write literally (pids, ports,
/// references, funs as raw bytes, non-finite floats):
///
/// ```text
/// input    = ws term ws [ "." ws ]                 (the "." must end the input)
/// term     = atom | number | string | binary | list | tuple | map | pid | port | ref
///          | fun | nonfinite
/// atom     = bare | "'" { char | escape } "'"      (bare: lowercase Latin-1 letter, then
///                                                   letters, digits, "_", "@"; not a
///                                                   reserved word such as `end`)
/// number   = [ "-" | "+" ] ws ( integer | float | "$" ( char | escape ) )
/// integer  = digits [ "#" based ]                  (base 2..=36, e.g. 16#ff; "_" may
///                                                   separate digits: 1_000)
/// float    = digits "." digits [ ( "e" | "E" ) [ "+" | "-" ] digits ]
/// string   = "\"" { char | escape } "\"" { ws string }   (a list of code points)
/// binary   = "<<" [ segment { "," segment } ] ">>"
/// segment  = string [ "/utf8" ] | number [ ":" size ] | number "/utf8"
///                                                  (size 1..=64 bits, default 8; the
///                                                   value must fit: <<300>> is an error)
/// list     = "[" [ term { "," term } [ "|" term ] ] "]"
/// tuple    = "{" [ term { "," term } ] "}"
/// map      = "#{" [ term "=>" term { "," term "=>" term } ] "}"
/// pid      = "#Pid<"  node "." number "." number ">"
/// port     = "#Port<" node "." number ">"
/// ref      = "#Ref<"  node { "." number } ">"
/// node     = atom [ ":" creation ]                 (creation 0 when absent)
/// fun      = "fun" atom ":" atom "/" arity         (an export fun)
///          | "#Fun<" [ atom "." ] binary ">"       (the raw encoding of any fun)
/// nonfinite = "#Float<" ( "nan" | "inf" | "-inf" ) ">"
/// escape   = "\" ( b d e f n r s t v | octal{1,3} | "x" hex{1,2} | "x{" hex+ "}"
///                | "^" letter | any other character, which stands for itself )
/// ws       = { space, tab, newline, carriage return, form feed, vertical tab,
///              or a "%" comment to the end of the line }
/// ```
///
/// The result is always a term in the shape [`Term::decode`] returns, so encoding it and
/// decoding it gives it back: integers that fit in `i64` are [`Term::Integer`], a list
/// whose tail is a list is flattened (`[1 | [2]]` is `[1, 2]`), a binary whose bit count
/// is a multiple of 8 is a [`Term::Binary`]. Map pairs are kept in the written order and
/// duplicate keys are kept (the receiver decides, as with a decoded map).
///
/// Where Erlang's shell would silently truncate, this parser refuses instead, since a
/// typo on an operator's command line should not become a different message: a binary
/// segment value that does not fit its size (`<<300>>`, `<<-1>>`), a character above 255
/// in a string segment without `/utf8`. Also refused: variables and expressions, atoms
/// longer than ETF can carry, nesting deeper than [`MAX_DEPTH`] (exactly where the
/// decoder would refuse the encoded term), decimal integers of more than
/// [`MAX_DECIMAL_DIGITS`] digits (bases 2, 4, 8, 16 and 32 have no limit).
///
/// `#Float<nan>`, `#Float<inf>` and `#Float<-inf>` exist because this crate's decoder
/// accepts those bit patterns (a Rust actor may well hold an `f64::NAN`) although Erlang
/// neither writes nor reads them: such a term reaches Rust actors intact, but an Erlang
/// node refuses it. Every NaN reads back as `f64::NAN` (payload and sign are not kept).
///
/// Parsing is linear in the input, never panics, and nests at most [`MAX_DEPTH`] calls
/// deep (a list's tail `[1 | [2 | [3 | ...]]]` is read iteratively), so any input is safe.
///
/// ```
/// use plugin_api::etf::{self, Term};
///
/// let t = etf::parse("{incr, 5}.").unwrap();
/// assert_eq!(t, Term::Tuple(vec![Term::atom("incr"), Term::Integer(5)]));
/// assert_eq!(t.to_string(), "{incr,5}");
///
/// let e = etf::parse("{1,2").unwrap_err();
/// assert_eq!(e.position(), 4);
/// assert_eq!(e.to_string(), "expected `,` or `}` at 1:5, found end of input");
/// ```
pub fn parse(text: &str) -> Result<Term, SyntaxError> {
    let mut p = Parser {
        src: text,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    let t = p.term()?;
    p.skip_ws();
    // The shell's full stop: a "." followed by whitespace or the end.
    if p.peek() == Some(b'.')
        && matches!(
            p.peek_at(1),
            None | Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b'%')
        )
    {
        p.pos += 1;
        p.skip_ws();
    }
    if p.pos < text.len() {
        return Err(p.error("end of input"));
    }
    Ok(t)
}

/// Reads a term with [`parse`], so `"{incr, 5}".parse::<Term>()` works, and so does any
/// API that takes `FromStr` (command-line argument parsers, config readers).
impl FromStr for Term {
    type Err = SyntaxError;

    fn from_str(s: &str) -> Result<Term, SyntaxError> {
        parse(s)
    }
}

/// Why a text is not a term, and where.
///
/// Carries the byte offset (for tools that highlight the input), the 1-based line and
/// column (in characters, for people), what the parser expected there and what it found,
/// so every message reads like ``expected `}` at 1:7, found `]` ``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    position: usize,
    line: usize,
    column: usize,
    expected: String,
    found: String,
}

impl SyntaxError {
    fn new(src: &str, position: usize, expected: String, found: String) -> Self {
        let (line, column) = line_col(src, position);
        SyntaxError {
            position,
            line,
            column,
            expected,
            found,
        }
    }

    /// Byte offset (0-based) into the input where the problem is, to point at it.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Line (1-based) of [`position`](Self::position), for multi-line input.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Column (1-based, in characters) of [`position`](Self::position) within its line.
    pub fn column(&self) -> usize {
        self.column
    }

    /// What would have been valid at that position, e.g. ``"`,` or `}`"``.
    pub fn expected(&self) -> &str {
        &self.expected
    }

    /// What is there instead: a quoted excerpt such as ``"`]`"``, or `"end of input"`.
    pub fn found(&self) -> &str {
        &self.found
    }
}

/// ``expected `}` at 1:7, found `]` ``.
impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected {} at {}:{}, found {}",
            self.expected, self.line, self.column, self.found
        )
    }
}

impl std::error::Error for SyntaxError {}

fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let bytes = src.as_bytes();
    let before = bytes.get(..pos).unwrap_or(bytes);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = match src.get(start..pos) {
        Some(s) => s.chars().count(),
        None => before.len() - start,
    };
    (line, column + 1)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '@'
}

/// An excerpt of the input for an error message: backquoted, control characters escaped,
/// at most 32 characters.
fn quote(s: &str) -> String {
    let mut out = String::from("`");
    for (i, c) in s.chars().enumerate() {
        if i == 32 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    out
}

/// The token at `pos`, for "found ...": a whole word, a two-character operator, or one
/// character.
fn found_at(src: &str, pos: usize) -> String {
    let Some(rest) = src.get(pos..) else {
        return "`?`".to_owned();
    };
    let Some(c) = rest.chars().next() else {
        return "end of input".to_owned();
    };
    let end = if is_word_char(c) {
        rest.char_indices()
            .find(|&(_, c)| !is_word_char(c))
            .map_or(rest.len(), |(i, _)| i)
    } else if ["<<", ">>", "=>", "#{"].iter().any(|t| rest.starts_with(t)) {
        2
    } else {
        c.len_utf8()
    };
    quote(&rest[..end])
}

fn digit_value(b: u8) -> u32 {
    match b {
        b'0'..=b'9' => (b - b'0') as u32,
        b'a'..=b'z' => (b - b'a') as u32 + 10,
        b'A'..=b'Z' => (b - b'A') as u32 + 10,
        _ => u32::MAX,
    }
}

/// An integer from sign and little-endian magnitude, in the form the decoder returns:
/// `Integer` when it fits in `i64`, a trimmed `BigInt` otherwise.
fn int_term(negative: bool, mut magnitude: Vec<u8>) -> Term {
    while magnitude.last() == Some(&0) {
        magnitude.pop();
    }
    let big = BigInt {
        negative,
        magnitude,
    };
    match big.to_i128().and_then(|v| i64::try_from(v).ok()) {
        Some(v) => Term::Integer(v),
        None => Term::BigInt(big),
    }
}

/// Whether `Term::encode` writes these list elements as `STRING_EXT`, which (unlike
/// `LIST_EXT`) does not count as a nesting level when decoded.
fn is_string_ext(items: &[Term]) -> bool {
    !items.is_empty()
        && items.len() <= u16::MAX as usize
        && items
            .iter()
            .all(|t| matches!(t, Term::Integer(i) if (0..=255).contains(i)))
}

/// Whether `Term::encode` can write this atom: up to 65535 bytes of UTF-8, or (as
/// `ATOM_EXT`) up to 65535 Latin-1 characters.
fn encodable_atom(s: &str) -> bool {
    s.len() <= u16::MAX as usize
        || (s.chars().all(|c| c <= '\u{ff}') && s.chars().count() <= u16::MAX as usize)
}

/// Bits of a binary being built, most significant bit first as in Erlang.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    /// Bits used in the last byte; 0 when the length is a whole number of bytes.
    used: u8,
}

impl Bits {
    fn push(&mut self, value: u64, size: u32) {
        if self.used == 0 && size == 8 {
            self.bytes.push(value as u8);
            return;
        }
        for i in (0..size).rev() {
            if self.used == 0 {
                self.bytes.push(0);
            }
            if let Some(last) = self.bytes.last_mut() {
                *last |= (((value >> i) & 1) as u8) << (7 - self.used);
            }
            self.used = (self.used + 1) % 8;
        }
    }

    fn push_char(&mut self, c: char) {
        let mut buf = [0; 4];
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            self.push(b as u64, 8);
        }
    }

    fn into_term(self) -> Term {
        if self.used == 0 {
            Term::Binary(self.bytes)
        } else {
            Term::BitBinary {
                bytes: self.bytes,
                bits: self.used,
            }
        }
    }
}

type R<T> = Result<T, SyntaxError>;

struct Parser<'a> {
    src: &'a str,
    /// Byte offset, always on a character boundary.
    pos: usize,
    /// Enclosing lists, tuples and maps, counted as the decoder counts them.
    depth: u32,
}

impl<'a> Parser<'a> {
    // ---- low level -----------------------------------------------------------------

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes().get(self.pos + offset).copied()
    }

    fn peek_char(&self) -> Option<char> {
        self.src.get(self.pos..)?.chars().next()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn eat_str(&mut self, s: &str) -> bool {
        let hit = self.bytes()[self.pos..].starts_with(s.as_bytes());
        if hit {
            self.pos += s.len();
        }
        hit
    }

    fn expect(&mut self, b: u8, expected: &str) -> R<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => self.pos += 1,
                b'%' => {
                    let rest = &self.bytes()[self.pos..];
                    self.pos += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                }
                _ => break,
            }
        }
    }

    /// The run of word characters (letters, digits, `_`, `@`) at the position.
    fn word(&self) -> &'a str {
        let rest = self.src.get(self.pos..).unwrap_or("");
        let end = rest
            .char_indices()
            .find(|&(_, c)| !is_word_char(c))
            .map_or(rest.len(), |(i, _)| i);
        &rest[..end]
    }

    fn error(&self, expected: impl Into<String>) -> SyntaxError {
        SyntaxError::new(
            self.src,
            self.pos,
            expected.into(),
            found_at(self.src, self.pos),
        )
    }

    /// An error about the text `start..end` (a literal that is well formed but not
    /// acceptable, such as a byte of 300).
    fn error_span(&self, start: usize, end: usize, expected: impl Into<String>) -> SyntaxError {
        let found = match self.src.get(start..end) {
            Some(s) if !s.is_empty() => quote(s),
            _ => found_at(self.src, start),
        };
        SyntaxError::new(self.src, start, expected.into(), found)
    }

    fn depth_error(&self, at: usize) -> SyntaxError {
        SyntaxError::new(
            self.src,
            at,
            format!("at most {MAX_DEPTH} levels of nested lists, tuples and maps"),
            found_at(self.src, at),
        )
    }

    /// Enters a tuple, map or non-string list, which the decoder counts as a level.
    fn enter(&mut self, at: usize) -> R<()> {
        if self.depth >= MAX_DEPTH {
            return Err(self.depth_error(at));
        }
        self.depth += 1;
        Ok(())
    }

    // ---- terms ---------------------------------------------------------------------

    fn term(&mut self) -> R<Term> {
        match self.peek() {
            Some(b'{') => self.tuple(),
            Some(b'[') => self.list(),
            Some(b'#') => self.hash(),
            Some(b'<') if self.peek_at(1) == Some(b'<') => self.binary(),
            Some(b'"') => self.string_term(),
            Some(b'\'') => self.quoted_atom().map(Term::Atom),
            Some(b'$' | b'0'..=b'9' | b'-' | b'+') => self.number(),
            Some(b'<') if self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) => Err(self.error(
                "a term (a pid as the Erlang shell prints it, `<0.9.0>`, has no node name; \
                 write `#Pid<node.9.0>`)",
            )),
            _ => self.bare_term(),
        }
    }

    /// An unquoted word: an atom or `fun m:f/a`; variables get their own message.
    fn bare_term(&mut self) -> R<Term> {
        let start = self.pos;
        let word = self.word();
        match word.chars().next() {
            Some(c) if c == '_' || c.is_uppercase() => Err(self.error_span(
                start,
                start + word.len(),
                "a term (variables are not allowed; quote an atom that starts with a capital \
                 or `_`: 'Word')",
            )),
            Some(c) if c.is_alphabetic() => {
                if word == "fun" {
                    self.pos += word.len();
                    self.export_fun(start)
                } else {
                    self.bare_atom().map(Term::Atom)
                }
            }
            _ => Err(self.error("a term")),
        }
    }

    /// An atom, quoted or not (`fun` is a reserved word here like any other).
    fn atom(&mut self, expected: &str) -> R<String> {
        match self.peek_char() {
            Some('\'') => self.quoted_atom(),
            Some(c) if c.is_alphabetic() => self.bare_atom(),
            _ => Err(self.error(expected)),
        }
    }

    /// An unquoted atom: exactly the words `Display` prints without quotes.
    fn bare_atom(&mut self) -> R<String> {
        let start = self.pos;
        let word = self.word();
        let mut shown = String::with_capacity(word.len());
        // The printer's rule is the reference: a word it prints bare reads back as that
        // atom, anything else (a reserved word, an uppercase start, a letter outside
        // Latin-1) needs quotes.
        let bare = write_atom_display(&mut shown, word).is_ok() && shown == word;
        if word.is_empty() || !bare {
            return Err(self.error_span(
                start,
                start + word.len(),
                "an atom that needs no quotes (quote reserved words, capitals and letters \
                 outside Latin-1: 'end')",
            ));
        }
        if !encodable_atom(word) {
            return Err(self.error_span(
                start,
                start + word.len(),
                "an atom of at most 65535 bytes",
            ));
        }
        self.pos += word.len();
        Ok(word.to_owned())
    }

    fn quoted_atom(&mut self) -> R<String> {
        let open = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            let rest = &self.bytes()[self.pos..];
            let Some(i) = rest.iter().position(|&b| b == b'\'' || b == b'\\') else {
                self.pos = self.src.len();
                let (l, c) = line_col(self.src, open);
                return Err(self.error(format!("`'` to close the atom that starts at {l}:{c}")));
            };
            s.push_str(&self.src[self.pos..self.pos + i]);
            self.pos += i + 1;
            if rest[i] == b'\'' {
                break;
            }
            let at = self.pos - 1;
            let code = self.escape()?;
            let c = char::from_u32(code).ok_or_else(|| {
                self.error_span(at, self.pos, "a Unicode scalar value (not a surrogate)")
            })?;
            s.push(c);
        }
        if !encodable_atom(&s) {
            return Err(self.error_span(open, self.pos, "an atom of at most 65535 bytes"));
        }
        Ok(s)
    }

    /// After a backslash in a string, quoted atom or character literal.
    fn escape(&mut self) -> R<u32> {
        let start = self.pos - 1;
        let Some(c) = self.peek_char() else {
            return Err(self.error("an escape sequence after `\\`"));
        };
        self.pos += c.len_utf8();
        Ok(match c {
            'b' => 8,
            'd' => 127,
            'e' => 27,
            'f' => 12,
            'n' => 10,
            'r' => 13,
            's' => 32,
            't' => 9,
            'v' => 11,
            '0'..='7' => {
                let mut v = c as u32 - '0' as u32;
                for _ in 0..2 {
                    match self.peek() {
                        Some(b @ b'0'..=b'7') => {
                            v = v * 8 + (b - b'0') as u32;
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                v
            }
            'x' if self.eat(b'{') => {
                let digits = self.pos;
                let mut v: u32 = 0;
                while let Some(b) = self.peek().filter(u8::is_ascii_hexdigit) {
                    v = (v * 16 + digit_value(b)).min(0x11_0000);
                    self.pos += 1;
                }
                if self.pos == digits {
                    return Err(self.error("a hexadecimal digit"));
                }
                self.expect(b'}', "`}` to end the `\\x{...}` escape")?;
                if v > 0x10_FFFF {
                    return Err(self.error_span(start, self.pos, "a code point up to 10FFFF"));
                }
                v
            }
            'x' => {
                let mut v = 0;
                for i in 0..2 {
                    match self.peek().filter(u8::is_ascii_hexdigit) {
                        Some(b) => {
                            v = v * 16 + digit_value(b);
                            self.pos += 1;
                        }
                        None if i == 0 => {
                            return Err(self.error("a hexadecimal digit (`\\xHH` or `\\x{H...}`)"))
                        }
                        None => break,
                    }
                }
                v
            }
            '^' => match self.peek().filter(u8::is_ascii_alphabetic) {
                Some(b) => {
                    self.pos += 1;
                    (b & 31) as u32
                }
                None => return Err(self.error("a letter after `\\^`")),
            },
            c => c as u32,
        })
    }

    /// One or more adjacent string literals (`"ab" "cd"` is `"abcd"`), as code points.
    fn string_lit(&mut self) -> R<Vec<u32>> {
        let mut out = Vec::new();
        loop {
            let open = self.pos;
            self.pos += 1;
            loop {
                let rest = &self.bytes()[self.pos..];
                let Some(i) = rest.iter().position(|&b| b == b'"' || b == b'\\') else {
                    self.pos = self.src.len();
                    let (l, c) = line_col(self.src, open);
                    return Err(
                        self.error(format!("`\"` to close the string that starts at {l}:{c}"))
                    );
                };
                out.extend(self.src[self.pos..self.pos + i].chars().map(|c| c as u32));
                self.pos += i + 1;
                if rest[i] == b'"' {
                    break;
                }
                out.push(self.escape()?);
            }
            let end = self.pos;
            self.skip_ws();
            if self.peek() != Some(b'"') {
                self.pos = end;
                return Ok(out);
            }
        }
    }

    fn string_term(&mut self) -> R<Term> {
        let start = self.pos;
        let items: Vec<Term> = self
            .string_lit()?
            .into_iter()
            .map(|c| Term::Integer(c as i64))
            .collect();
        // A string that is not a STRING_EXT is a LIST_EXT: one more level.
        if !items.is_empty() && !is_string_ext(&items) && self.depth >= MAX_DEPTH {
            return Err(self.depth_error(start));
        }
        Ok(Term::List(items))
    }

    fn number(&mut self) -> R<Term> {
        let start = self.pos;
        let negative = match self.peek() {
            Some(b'-') => true,
            Some(b'+') => false,
            _ => return self.unsigned(start, false),
        };
        self.pos += 1;
        self.skip_ws();
        match self.peek() {
            Some(b'$' | b'0'..=b'9') => self.unsigned(start, negative),
            _ => Err(self.error("a number after the sign")),
        }
    }

    fn unsigned(&mut self, start: usize, negative: bool) -> R<Term> {
        if self.eat(b'$') {
            let Some(c) = self.peek_char() else {
                return Err(self.error("a character after `$`"));
            };
            self.pos += c.len_utf8();
            let code = if c == '\\' { self.escape()? } else { c as u32 };
            return Ok(int_term(negative, code.to_le_bytes().to_vec()));
        }
        let (ds, de) = self.digits(10);
        if self.peek() == Some(b'#') {
            let base = self.src[ds..de]
                .bytes()
                .filter(|&b| b != b'_')
                .try_fold(0u32, |acc, b| {
                    acc.checked_mul(10)?.checked_add(digit_value(b))
                })
                .filter(|b| (2..=36).contains(b))
                .ok_or_else(|| self.error_span(ds, de, "a base from 2 to 36"))?;
            self.pos += 1;
            let (s, e) = self.digits(base);
            if s == e {
                return Err(self.error(format!("a base-{base} digit")));
            }
            return self.integer(start, s, e, base, negative);
        }
        if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
            self.digits(10);
            if matches!(self.peek(), Some(b'e' | b'E')) {
                self.pos += 1;
                if matches!(self.peek(), Some(b'+' | b'-')) {
                    self.pos += 1;
                }
                let (s, e) = self.digits(10);
                if s == e {
                    return Err(self.error("the digits of the exponent"));
                }
            }
            let mut text = String::with_capacity(self.pos - ds + 1);
            if negative {
                text.push('-');
            }
            text.extend(self.src[ds..self.pos].chars().filter(|&c| c != '_'));
            return match text.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(Term::Float(x)),
                _ => Err(self.error_span(
                    start,
                    self.pos,
                    "a float within the range of a 64-bit float (±1.8e308)",
                )),
            };
        }
        self.integer(start, ds, de, 10, negative)
    }

    /// Digits of `base` with single `_` between them; returns their span.
    fn digits(&mut self, base: u32) -> (usize, usize) {
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b) if digit_value(b) < base => self.pos += 1,
                Some(b'_')
                    if self.pos > start
                        && self.peek_at(1).is_some_and(|b| digit_value(b) < base) =>
                {
                    self.pos += 1
                }
                _ => break,
            }
        }
        (start, self.pos)
    }

    fn integer(&self, start: usize, s: usize, e: usize, base: u32, negative: bool) -> R<Term> {
        let digits = || {
            self.bytes()[s..e]
                .iter()
                .filter(|&&b| b != b'_')
                .map(|&b| digit_value(b))
        };
        let small = digits().try_fold(0u128, |acc, d| {
            acc.checked_mul(base as u128)?.checked_add(d as u128)
        });
        if let Some(v) = small {
            return Ok(int_term(negative, v.to_le_bytes().to_vec()));
        }
        let mut magnitude = Vec::new();
        if base.is_power_of_two() {
            // Linear: each digit is a fixed number of bits, least significant first.
            let width = base.trailing_zeros();
            let (mut acc, mut n) = (0u32, 0u32);
            let reversed = self.bytes()[s..e].iter().rev().filter(|&&b| b != b'_');
            for d in reversed.map(|&b| digit_value(b)) {
                acc |= d << n;
                n += width;
                while n >= 8 {
                    magnitude.push(acc as u8);
                    acc >>= 8;
                    n -= 8;
                }
            }
            if n > 0 {
                magnitude.push(acc as u8);
            }
        } else {
            if digits().count() > MAX_DECIMAL_DIGITS {
                return Err(self.error_span(
                    start,
                    e,
                    format!(
                        "an integer of at most {MAX_DECIMAL_DIGITS} digits in base {base} \
                         (write larger ones in base 16: 16#...)"
                    ),
                ));
            }
            let mut limbs: Vec<u32> = Vec::new(); // little-endian
            for d in digits() {
                let mut carry = d as u64;
                for limb in limbs.iter_mut() {
                    let v = (*limb as u64) * base as u64 + carry;
                    *limb = v as u32;
                    carry = v >> 32;
                }
                if carry > 0 {
                    limbs.push(carry as u32);
                }
            }
            magnitude = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
        }
        Ok(int_term(negative, magnitude))
    }

    fn tuple(&mut self) -> R<Term> {
        self.enter(self.pos)?;
        self.pos += 1;
        self.skip_ws();
        let mut items = Vec::new();
        if !self.eat(b'}') {
            loop {
                items.push(self.term()?);
                self.skip_ws();
                if self.eat(b',') {
                    self.skip_ws();
                } else if self.eat(b'}') {
                    break;
                } else {
                    return Err(self.error("`,` or `}`"));
                }
            }
        }
        self.depth -= 1;
        Ok(Term::Tuple(items))
    }

    fn map(&mut self) -> R<Term> {
        self.enter(self.pos)?;
        self.pos += 2;
        self.skip_ws();
        let mut pairs = Vec::new();
        if !self.eat(b'}') {
            loop {
                let k = self.term()?;
                self.skip_ws();
                if !self.eat_str("=>") {
                    return Err(self.error("`=>`"));
                }
                self.skip_ws();
                let v = self.term()?;
                pairs.push((k, v));
                self.skip_ws();
                if self.eat(b',') {
                    self.skip_ws();
                } else if self.eat(b'}') {
                    break;
                } else {
                    return Err(self.error("`,` or `}`"));
                }
            }
        }
        self.depth -= 1;
        Ok(Term::Map(pairs))
    }

    /// A list. A tail that is itself a list (`[1 | [2 | [3]]]`) continues the same list,
    /// read in the same loop (no recursion), as the decoder flattens it.
    fn list(&mut self) -> R<Term> {
        let open = self.pos;
        self.pos += 1;
        self.skip_ws();
        if self.eat(b']') {
            return Ok(Term::List(Vec::new()));
        }
        // One level too deep is still fine for a list of bytes, which is encoded as
        // STRING_EXT and not counted by the decoder: read it one level deeper, and
        // decide at the end.
        let at_limit = self.depth == MAX_DEPTH;
        if self.depth > MAX_DEPTH {
            return Err(self.depth_error(open));
        }
        self.depth += 1;
        let mut items = Vec::new();
        let mut closes = 1usize;
        let mut tail = None;
        loop {
            items.push(self.term()?);
            self.skip_ws();
            if self.eat(b',') {
                self.skip_ws();
            } else if self.eat(b'|') {
                self.skip_ws();
                match self.peek() {
                    Some(b'[') => {
                        self.pos += 1;
                        self.skip_ws();
                        closes += 1;
                        if self.eat(b']') {
                            closes -= 1;
                            break;
                        }
                    }
                    Some(b'"') => {
                        let codes = self.string_lit()?;
                        items.extend(codes.into_iter().map(|c| Term::Integer(c as i64)));
                        break;
                    }
                    _ => {
                        tail = Some(self.term()?);
                        break;
                    }
                }
            } else if self.eat(b']') {
                closes -= 1;
                break;
            } else {
                return Err(self.error("`,`, `|` or `]`"));
            }
        }
        for _ in 0..closes {
            self.skip_ws();
            self.expect(b']', "`]`")?;
        }
        self.depth -= 1;
        if at_limit && (tail.is_some() || !is_string_ext(&items)) {
            return Err(self.depth_error(open));
        }
        Ok(match tail {
            None => Term::List(items),
            Some(tail) => Term::ImproperList {
                elements: items,
                tail: Box::new(tail),
            },
        })
    }

    fn binary(&mut self) -> R<Term> {
        self.pos += 2;
        self.skip_ws();
        let mut bits = Bits::default();
        if !self.eat_str(">>") {
            loop {
                self.segment(&mut bits)?;
                self.skip_ws();
                if self.eat(b',') {
                    self.skip_ws();
                } else if self.eat_str(">>") {
                    break;
                } else {
                    return Err(self.error("`,` or `>>`"));
                }
            }
        }
        Ok(bits.into_term())
    }

    fn segment(&mut self, bits: &mut Bits) -> R<()> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => {
                let codes = self.string_lit()?;
                let end = self.pos;
                self.skip_ws();
                if self.eat(b'/') {
                    self.skip_ws();
                    self.utf8_type()?;
                    for code in codes {
                        let c = char::from_u32(code).ok_or_else(|| {
                            self.error_span(start, end, "Unicode scalar values in a /utf8 string")
                        })?;
                        bits.push_char(c);
                    }
                } else {
                    for code in codes {
                        if code > 255 {
                            return Err(self.error_span(
                                start,
                                end,
                                "characters up to 255 in a binary string (add /utf8 for \
                                 Unicode text: <<\"日本\"/utf8>>)",
                            ));
                        }
                        bits.push(code as u64, 8);
                    }
                }
            }
            Some(b'$' | b'0'..=b'9' | b'-' | b'+') => {
                let value = self.number()?;
                let end = self.pos;
                let value = match value {
                    Term::Integer(i) => u64::try_from(i).ok(),
                    Term::Float(_) => {
                        return Err(self.error_span(start, end, "an integer or a string"))
                    }
                    _ => None,
                };
                self.skip_ws();
                let mut size = None;
                if self.eat(b':') {
                    self.skip_ws();
                    let s = self.pos;
                    while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                        self.pos += 1;
                    }
                    let n = self.src[s..self.pos]
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=64).contains(n))
                        .ok_or_else(|| self.error_span(s, self.pos, "a size from 1 to 64 bits"))?;
                    size = Some(n);
                    self.skip_ws();
                }
                if self.peek() == Some(b'/') {
                    if size.is_some() {
                        return Err(self.error("`,` or `>>` (a sized segment takes no type)"));
                    }
                    self.pos += 1;
                    self.skip_ws();
                    self.utf8_type()?;
                    let c = value
                        .and_then(|v| u32::try_from(v).ok())
                        .and_then(char::from_u32)
                        .ok_or_else(|| {
                            self.error_span(start, end, "a Unicode code point for /utf8")
                        })?;
                    bits.push_char(c);
                } else {
                    let size = size.unwrap_or(8);
                    let max = u64::MAX >> (64 - size);
                    match value {
                        Some(v) if v <= max => bits.push(v, size),
                        _ if size == 8 => {
                            return Err(self.error_span(start, end, "a byte (0..=255)"))
                        }
                        _ => {
                            return Err(self.error_span(
                                start,
                                end,
                                format!("an integer from 0 to {max} (fits in {size} bits)"),
                            ))
                        }
                    }
                }
            }
            _ => return Err(self.error("an integer or a string (a binary segment)")),
        }
        Ok(())
    }

    fn utf8_type(&mut self) -> R<()> {
        if self.word() == "utf8" {
            self.pos += 4;
            Ok(())
        } else {
            Err(self.error("`utf8` (the only type specifier supported)"))
        }
    }

    /// `#{` or one of the `#Kind<...>` notations.
    fn hash(&mut self) -> R<Term> {
        let start = self.pos;
        if self.peek_at(1) == Some(b'{') {
            return self.map();
        }
        self.pos += 1;
        let word = self.word();
        let kind = match word {
            "Pid" | "Port" | "Ref" | "Fun" | "Float"
                if self.bytes().get(self.pos + word.len()) == Some(&b'<') =>
            {
                word
            }
            _ => {
                return Err(self.error_span(
                    start,
                    self.pos + word.len(),
                    "`#{` (a map), `#Pid<`, `#Port<`, `#Ref<`, `#Fun<` or `#Float<`",
                ))
            }
        };
        self.pos += word.len() + 1;
        self.skip_ws();
        let t = match kind {
            "Pid" => {
                let (node, creation) = self.node()?;
                let id = self.dot_number(u32::MAX as u64)? as u32;
                let serial = self.dot_number(u32::MAX as u64)? as u32;
                Term::Pid(ExternalPid {
                    node,
                    id,
                    serial,
                    creation,
                })
            }
            "Port" => {
                let (node, creation) = self.node()?;
                let id = self.dot_number(u64::MAX)?;
                Term::Port(ExternalPort { node, id, creation })
            }
            "Ref" => {
                let (node, creation) = self.node()?;
                let mut id = Vec::new();
                while self.peek() == Some(b'.') {
                    if id.len() == u16::MAX as usize {
                        return Err(self.error("`>` (a reference has at most 65535 words)"));
                    }
                    id.push(self.dot_number(u32::MAX as u64)? as u32);
                    self.skip_ws();
                }
                Term::Reference(ExternalRef { node, creation, id })
            }
            "Fun" => self.raw_fun()?,
            _ => {
                let x = match self.word() {
                    "nan" => f64::NAN,
                    "inf" => f64::INFINITY,
                    "" if self.peek() == Some(b'-')
                        && self.src[self.pos + 1..].starts_with("inf") =>
                    {
                        self.pos += 1;
                        f64::NEG_INFINITY
                    }
                    _ => return Err(self.error("`nan`, `inf` or `-inf`")),
                };
                self.pos += 3;
                Term::Float(x)
            }
        };
        self.skip_ws();
        self.expect(b'>', "`>`")?;
        Ok(t)
    }

    /// The node of a pid, port or reference, and its creation (0 when not written).
    fn node(&mut self) -> R<(String, u32)> {
        let node = self.atom("a node name (an atom)")?;
        self.skip_ws();
        let mut creation = 0;
        if self.eat(b':') {
            self.skip_ws();
            creation = self.decimal(u32::MAX as u64, "the node's creation (a number)")? as u32;
            self.skip_ws();
        }
        Ok((node, creation))
    }

    /// `.` and a number of a pid, port or reference.
    fn dot_number(&mut self, max: u64) -> R<u64> {
        self.skip_ws();
        self.expect(b'.', "`.`")?;
        self.skip_ws();
        self.decimal(
            max,
            "a number (a node name with `.` in it must be quoted: 'a@host.example')",
        )
    }

    /// Plain decimal digits, at most `max`.
    fn decimal(&mut self, max: u64, expected: &str) -> R<u64> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.error(expected));
        }
        self.src[start..self.pos]
            .parse::<u64>()
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(|| self.error_span(start, self.pos, format!("a number from 0 to {max}")))
    }

    /// After `fun`: ` module:function/arity`.
    fn export_fun(&mut self, start: usize) -> R<Term> {
        // EXPORT_EXT is counted as a level by the decoder.
        if self.depth >= MAX_DEPTH {
            return Err(self.depth_error(start));
        }
        self.skip_ws();
        let module = self.atom("a module name (`fun module:function/arity`)")?;
        self.skip_ws();
        self.expect(
            b':',
            "`:` (`fun module:function/arity`; local funs cannot be written as terms)",
        )?;
        self.skip_ws();
        let function = self.atom("a function name (an atom)")?;
        self.skip_ws();
        self.expect(b'/', "`/` and the arity")?;
        self.skip_ws();
        let arity = self.decimal(255, "the arity (a number from 0 to 255)")? as u8;
        Ok(Term::Other(export_fun_bytes(&module, &function, arity)))
    }

    /// After `#Fun<`: `[module .] <<bytes>>`, checked to be one fun the decoder accepts
    /// at this depth, and to be of that module.
    fn raw_fun(&mut self) -> R<Term> {
        let mut module = None;
        if !self.bytes()[self.pos..].starts_with(b"<<") {
            let at = self.pos;
            let m = self.atom("a module name or `<<`")?;
            module = Some((at, self.pos, m));
            self.skip_ws();
            self.expect(b'.', "`.`")?;
            self.skip_ws();
            if !self.bytes()[self.pos..].starts_with(b"<<") {
                return Err(self.error("`<<` (the fun's encoding)"));
            }
        }
        let start = self.pos;
        let Term::Binary(raw) = self.binary()? else {
            return Err(self.error_span(start, self.pos, "whole bytes (the fun's encoding)"));
        };
        let info = fun_info(&raw, self.depth).map_err(|e| {
            self.error_span(
                start,
                self.pos,
                format!("the encoding of one fun (NEW_FUN_EXT or EXPORT_EXT): {e}"),
            )
        })?;
        if let Some((at, end, m)) = module {
            if info.module.as_deref() != Some(m.as_str()) {
                let expected = match &info.module {
                    Some(actual) => {
                        let mut s = String::from("`");
                        let _ = write_atom_display(&mut s, actual);
                        s + "`, the module these bytes name"
                    }
                    None => "no module (these bytes do not name one): `#Fun<<<...>>>`".to_owned(),
                };
                return Err(self.error_span(at, end, expected));
            }
        }
        Ok(Term::Other(raw))
    }
}
