"""The bits of MLIR's textual syntax that the routing attribute needs.

- :func:`format_float`: ``AsmPrinter::printFloat`` of an f64 ``APFloat``
  (``2.5`` prints ``2.500000e+00``), reproduced digit for digit, including
  the fallback to the shortest-roundtrip-or-17-digit form and the
  hexadecimal form.
- :func:`format_diagnostic_float`: how a ``double`` streams into an MLIR
  diagnostic (``%e``, ``INF``, ``nan``), for verifier messages.
- :class:`TokenStream`: a lexer and the ``AsmParser`` primitives
  (``parseKeyword``, ``parseInteger``, ``parseFloat``, punctuation) with
  MLIR's error texts.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass

__all__ = [
    "MlirSyntaxError",
    "TokenStream",
    "format_diagnostic_float",
    "format_float",
]

# Digits printed by APFloat::toString when FormatPrecision is 0, for the
# 53-bit significand of an IEEE double: 2 + 53 * 59 / 196.
_DOUBLE_DEFAULT_PRECISION = 2 + 53 * 59 // 196


def _double_bits(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]


def _apfloat_to_string(value: float, precision: int, max_padding: int,
                       truncate_zero: bool) -> str:
    """``APFloat::toString`` of a finite double (llvm/lib/Support/APFloat.cpp).

    The digits are produced the way APFloat does: exact decimal expansion of
    the binary value, a first cut of whole powers of ten that *truncates*,
    then round-half-up on the first dropped decimal digit.
    """
    negative = math.copysign(1.0, value) < 0
    sign = "-" if negative else ""
    magnitude = abs(value)
    if magnitude == 0.0:
        if max_padding:
            return sign + "0"
        if truncate_zero:
            return sign + "0.0E+0"
        return sign + "0.0" + "0" * max(precision - 1, 0) + "e+00"

    if precision == 0:
        precision = _DOUBLE_DEFAULT_PRECISION

    mantissa, exponent2 = math.frexp(magnitude)
    significand = int(mantissa * (1 << 53))  # exact: at most 53 bits
    exp = exponent2 - 53
    trailing = (significand & -significand).bit_length() - 1
    significand >>= trailing
    exp += trailing
    # Change the exponent from 2^exp to 10^exp.
    if exp > 0:
        significand <<= exp
        exp = 0
    elif exp < 0:
        significand *= 5 ** (-exp)

    # AdjustToPrecision on the integer: drop whole powers of ten (truncating).
    bits = significand.bit_length()
    bits_required = (precision * 196 + 58) // 59
    if bits > bits_required:
        tens = (bits - bits_required) * 59 // 196
        if tens:
            exp += tens
            significand //= 10 ** tens

    digits = str(significand)
    stripped = digits.rstrip("0")
    exp += len(digits) - len(stripped)
    digits = stripped

    # AdjustToPrecision on the digit buffer: round half up.
    count = len(digits)
    if count > precision:
        kept = digits[:precision]
        dropped = count - precision
        if digits[precision] < "5":
            trimmed = kept.rstrip("0")
            exp += dropped + len(kept) - len(trimmed)
            digits = trimmed
        else:
            trimmed = kept.rstrip("9")
            if not trimmed:
                exp += count
                digits = "1"
            else:
                exp += dropped + len(kept) - len(trimmed)
                digits = trimmed[:-1] + chr(ord(trimmed[-1]) + 1)

    count = len(digits)
    if not max_padding:
        scientific = True
    elif exp >= 0:
        scientific = exp > max_padding or count + exp > precision
    else:
        most_significant = exp + count - 1
        scientific = most_significant < 0 and -most_significant > max_padding

    if scientific:
        exp10 = exp + count - 1
        text = digits[0] + "."
        if count == 1 and truncate_zero:
            text += "0"
        else:
            text += digits[1:]
        if not truncate_zero and precision > count - 1:
            text += "0" * (precision - count + 1)
        text += "E" if truncate_zero else "e"
        text += "+" if exp10 >= 0 else "-"
        exponent_digits = str(abs(exp10))
        if not truncate_zero and len(exponent_digits) < 2:
            exponent_digits = "0" + exponent_digits
        return sign + text + exponent_digits

    if exp >= 0:
        return sign + digits + "0" * exp
    whole = exp + count
    if whole > 0:
        return sign + digits[:whole] + "." + digits[whole:]
    return sign + "0." + "0" * (-whole) + digits


def format_float(value: float) -> str:
    """Print an f64 value exactly as MLIR's ``AsmPrinter::printFloat`` does.

    Scientific notation with 7 significant digits when that parses back to
    the same double (``2.500000e+00``, ``1.050000e+00``), else APFloat's
    default form (up to 17 significant digits) when it contains a ``.``,
    else the bit pattern in hexadecimal (``0x7FF0000000000000`` for +inf).
    """
    value = float(value)
    if math.isfinite(value):
        text = _apfloat_to_string(value, 6, 0, False)
        if _double_bits(float(text)) == _double_bits(value):
            return text
        text = _apfloat_to_string(value, 0, 3, True)
        if "." in text:
            return text
    return "0x" + format(_double_bits(value), "X")


def format_diagnostic_float(value: float) -> str:
    """Format a double the way ``InFlightDiagnostic << double`` does.

    LLVM's ``raw_ostream`` prints ``%e`` (``-2.500000e+00``), ``INF`` /
    ``-INF`` for infinities and ``nan`` for NaN.
    """
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "-INF" if value < 0 else "INF"
    return "%e" % value


class MlirSyntaxError(ValueError):
    """A parse error, with MLIR's message and the offset in the text."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True)
class _Token:
    kind: str  # 'keyword', 'integer', 'float', 'punct', 'eof'
    text: str
    offset: int


_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<keyword>[A-Za-z_][A-Za-z0-9_$.]*)
  | (?P<hex>0x[0-9A-Fa-f]+)
  | (?P<float>[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?)
  | (?P<integer>[0-9]+)
  | (?P<punct>[<>,=()\-:\[\]{}])
    """,
    re.VERBOSE,
)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise MlirSyntaxError(
                f"unexpected character '{text[pos]}'", pos)
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            if kind == "hex":
                kind = "integer"
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(_Token("eof", "", len(text)))
    return tokens


class TokenStream:
    """Tokens of an attribute body with MLIR ``AsmParser``-style primitives.

    Every ``parse_*`` method raises :class:`MlirSyntaxError` with the text
    MLIR's parser would emit; every ``parse_optional_*`` method returns
    ``None``/``False`` without consuming anything when the token does not
    match.
    """

    def __init__(self, text: str) -> None:
        self._tokens = _tokenize(text)
        self._index = 0

    # -- inspection -------------------------------------------------------
    @property
    def offset(self) -> int:
        """Offset of the current token in the text."""
        return self._tokens[self._index].offset

    def _peek(self, ahead: int = 0) -> _Token:
        index = min(self._index + ahead, len(self._tokens) - 1)
        return self._tokens[index]

    def _advance(self) -> _Token:
        token = self._tokens[self._index]
        if token.kind != "eof":
            self._index += 1
        return token

    def at_end(self) -> bool:
        """True when every token has been consumed."""
        return self._peek().kind == "eof"

    def error(self, message: str) -> MlirSyntaxError:
        """An error located at the current token."""
        return MlirSyntaxError(message, self.offset)

    # -- punctuation ------------------------------------------------------
    def parse_optional_punct(self, punct: str) -> bool:
        """Consume ``punct`` if it is next."""
        token = self._peek()
        if token.kind == "punct" and token.text == punct:
            self._advance()
            return True
        return False

    def parse_punct(self, punct: str) -> None:
        """Consume ``punct`` or fail with ``expected 'punct'``."""
        if not self.parse_optional_punct(punct):
            raise self.error(f"expected '{punct}'")

    # -- keywords ---------------------------------------------------------
    def parse_optional_keyword(self) -> str | None:
        """Consume and return a bare keyword if one is next."""
        token = self._peek()
        if token.kind == "keyword":
            self._advance()
            return token.text
        return None

    def parse_keyword(self, expected: str | None = None) -> str:
        """Parse any keyword, or exactly ``expected`` when given."""
        token = self._peek()
        if expected is not None:
            if token.kind != "keyword" or token.text != expected:
                raise self.error(f"expected '{expected}'")
            self._advance()
            return expected
        keyword = self.parse_optional_keyword()
        if keyword is None:
            raise self.error("expected valid keyword")
        return keyword

    # -- numbers ----------------------------------------------------------
    def parse_integer(self, bits: int = 64) -> int:
        """``parseInteger`` into a signed integer of ``bits`` bits.

        Accepts ``true``/``false``, decimal and hexadecimal literals with an
        optional leading ``-``.
        """
        token = self._peek()
        if token.kind == "keyword" and token.text in ("true", "false"):
            self._advance()
            return 1 if token.text == "true" else 0
        negative = token.kind == "punct" and token.text == "-"
        literal = self._peek(1) if negative else token
        if literal.kind != "integer":
            raise self.error("expected integer value")
        if negative:
            self._advance()
        self._advance()
        value = int(literal.text, 0) if literal.text.startswith("0x") \
            else int(literal.text, 10)
        value = -value if negative else value
        if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
            raise MlirSyntaxError("integer value too large", literal.offset)
        return value

    def parse_float(self) -> float:
        """``parseFloat`` into a double.

        A decimal float literal (``2.5``, ``1.``, ``1.0e-3``) with an optional
        ``-``, or a hexadecimal integer holding the IEEE-754 bits of the
        double (``0x7FF0000000000000``). A decimal integer is an error, as in
        MLIR.
        """
        negative = self.parse_optional_punct("-")
        token = self._peek()
        if token.kind == "float":
            self._advance()
            value = float(token.text)
            if math.isinf(value):
                raise MlirSyntaxError("floating point value too large",
                                      token.offset)
            return -value if negative else value
        if token.kind == "integer":
            if not token.text.startswith("0x"):
                raise MlirSyntaxError(
                    "unexpected decimal integer literal for a floating point "
                    "value (add a trailing dot to make the literal a float)",
                    token.offset)
            if negative:
                raise MlirSyntaxError(
                    "hexadecimal float literal should not have a leading "
                    "minus", token.offset)
            bits = int(token.text, 16)
            if bits.bit_length() > 64:
                raise MlirSyntaxError(
                    "hexadecimal float constant out of range for type",
                    token.offset)
            self._advance()
            return struct.unpack("<d", struct.pack("<Q", bits))[0]
        raise self.error("expected floating point literal")
