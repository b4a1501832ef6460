"""Reads the float32 feature columns of an Arrow IPC *file* into an (nRows, d) float32 array.

Used by the Python sides of segtensor's benchmarks so that they read the very file the
`segtensor` CLI reads. With pyarrow installed it is used; without it (Debian bookworm ships no
python3-pyarrow) a minimal reader walks the file's footer and record-batch metadata (FlatBuffers)
and copies each column's value buffer with numpy. The minimal reader takes what
`bench/make-table.ts` writes: uncompressed batches, primitive columns without nulls; anything
else is refused with a message rather than misread.

    from arrow_ipc import read_features
    X, names, how = read_features('bench/data/wf-200000x128.arrow')   # how: 'pyarrow' or 'numpy'
"""
import struct

import numpy as np

_MAGIC = b'ARROW1'
_TYPE_INT, _TYPE_FLOAT = 2, 3


class _Buf:
    """A FlatBuffers view: tables, vectors and strings at absolute positions of `b`."""

    def __init__(self, b, base=0):
        self.b, self.base = b, base

    def u8(self, p):
        return self.b[self.base + p]

    def u16(self, p):
        return struct.unpack_from('<H', self.b, self.base + p)[0]

    def i32(self, p):
        return struct.unpack_from('<i', self.b, self.base + p)[0]

    def u32(self, p):
        return struct.unpack_from('<I', self.b, self.base + p)[0]

    def i64(self, p):
        return struct.unpack_from('<q', self.b, self.base + p)[0]

    def root(self):
        return self.u32(0)

    def field(self, table, i):
        """Absolute position of field i of the table at `table`, or None when absent."""
        vt = table - self.i32(table)
        vt_len = self.u16(vt)
        if 4 + 2 * i >= vt_len:
            return None
        off = self.u16(vt + 4 + 2 * i)
        return table + off if off else None

    def deref(self, p):
        return p + self.u32(p)

    def vector(self, table, i):
        """(start, length) of the vector in field i, or (0, 0)."""
        p = self.field(table, i)
        if p is None:
            return 0, 0
        v = self.deref(p)
        return v + 4, self.u32(v)

    def string(self, table, i):
        start, n = self.vector(table, i)
        return bytes(self.b[self.base + start:self.base + start + n]).decode()


def _read_numpy(path):
    with open(path, 'rb') as f:
        data = f.read()
    if data[:6] != _MAGIC or data[-6:] != _MAGIC:
        raise ValueError(f'{path}: not an Arrow IPC file (no ARROW1 magic at both ends)')
    footer_len = struct.unpack_from('<i', data, len(data) - 10)[0]
    fb = _Buf(data, len(data) - 10 - footer_len)
    footer = fb.root()
    schema = fb.deref(fb.field(footer, 1))
    f_start, f_n = fb.vector(schema, 1)
    fields = []
    for j in range(f_n):
        fpos = fb.deref(f_start + 4 * j)
        name = fb.string(fpos, 0)
        ttype = fb.u8(fb.field(fpos, 2))
        tpos = fb.deref(fb.field(fpos, 3))
        if ttype == _TYPE_FLOAT:
            p = fb.field(tpos, 0)
            prec = fb.u16(p) if p is not None else 0
            dtype = {1: np.float32, 2: np.float64}.get(prec)
        elif ttype == _TYPE_INT:
            p = fb.field(tpos, 0)
            bits = fb.i32(p) if p is not None else 0
            dtype = {32: np.int32, 64: np.int64}.get(bits)
        else:
            dtype = None
        if dtype is None:
            raise ValueError(f'{path}: column {name!r} has a type this minimal reader does not read (install pyarrow)')
        fields.append((name, dtype))
    feats = [j for j, (_, t) in enumerate(fields) if t == np.float32]
    b_start, b_n = fb.vector(footer, 3)
    blocks = [(fb.i64(b_start + 24 * i), fb.i32(b_start + 24 * i + 8), fb.i64(b_start + 24 * i + 16)) for i in range(b_n)]
    batches = []
    n_total = 0
    for offset, meta_len, _body_len in blocks:
        # Message: continuation marker 0xFFFFFFFF then the length (or the pre-1.0 bare length).
        skip = 8 if struct.unpack_from('<I', data, offset)[0] == 0xFFFFFFFF else 4
        mb = _Buf(data, offset + skip)
        msg = mb.root()
        if mb.u8(mb.field(msg, 1)) != 3:
            raise ValueError(f'{path}: a block that is not a record batch (dictionaries are not read here)')
        rb = mb.deref(mb.field(msg, 2))
        length = mb.i64(mb.field(rb, 0))
        if mb.field(rb, 3) is not None:
            raise ValueError(f'{path}: compressed record batches (install pyarrow)')
        n_start, n_nodes = mb.vector(rb, 1)
        for j in range(n_nodes):
            if mb.i64(n_start + 16 * j + 8) != 0:
                raise ValueError(f'{path}: column {fields[j][0]!r} has nulls (install pyarrow)')
        bs, bn = mb.vector(rb, 2)
        if bn != 2 * len(fields):
            raise ValueError(f'{path}: {bn} buffers for {len(fields)} primitive columns')
        body = offset + meta_len
        cols = []
        for j in feats:
            off, ln = mb.i64(bs + 16 * (2 * j + 1)), mb.i64(bs + 16 * (2 * j + 1) + 8)
            if ln < 4 * length:
                raise ValueError(f'{path}: column {fields[j][0]!r} buffer too short')
            cols.append(np.frombuffer(data, dtype='<f4', count=length, offset=body + off))
        batches.append((length, cols))
        n_total += length
    X = np.empty((n_total, len(feats)), dtype=np.float32)
    row = 0
    for length, cols in batches:
        for c, col in enumerate(cols):
            X[row:row + length, c] = col
        row += length
    return X, [fields[j][0] for j in feats]


def read_features(path):
    """(X, feature names, 'pyarrow' | 'numpy'): the float32 columns, row-major float32."""
    try:
        import pyarrow as pa
    except ImportError:
        X, names = _read_numpy(path)
        return X, names, 'numpy'
    with pa.memory_map(path) as src:
        t = pa.ipc.open_file(src).read_all()
    names = [f.name for f in t.schema if pa.types.is_float32(f.type)]
    X = np.empty((t.num_rows, len(names)), dtype=np.float32)
    for c, name in enumerate(names):
        X[:, c] = t.column(name).to_numpy()
    return X, names, 'pyarrow'
