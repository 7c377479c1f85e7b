"""Writes the .npz files of the bad-grid corpus's own-data cases (tests/grids/bad/npz_*.toml) with
the Python standard library only (no numpy): a zip of .npy members, as np.savez writes them.
Run from anywhere: python3 tests/grids/bad-npz/make.py"""
import os, struct, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def npy(descr, shape, data):
    """A version 1.0 .npy file: magic, header dict padded to 64 bytes, raw C-order data."""
    shape_text = "(" + "".join(f"{d}, " for d in shape).rstrip(" ") + ")"
    if len(shape) > 1:
        shape_text = shape_text.replace(",)", ")")
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}"
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data


def u8(shape, values):
    return npy("|u1", shape, bytes(values))


def i64(values):
    return npy("<i8", (len(values),), struct.pack(f"<{len(values)}q", *values))


def f4(shape, values):
    return npy("<f4", shape, struct.pack(f"<{len(values)}f", *values))


def strings(names):
    width = max(len(n) for n in names)
    data = b"".join(n.ljust(width, "\0").encode("utf-32-le") for n in names)
    return npy(f"<U{width}", (len(names),), data)


def savez(name, arrays):
    with zipfile.ZipFile(os.path.join(HERE, name), "w", zipfile.ZIP_STORED) as z:
        for key, data in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, data)


images = u8((6, 4, 4), [(i * 37) % 256 for i in range(6 * 16)])
# Label 3 with three class names (0..3 allowed).
savez("label_out_of_range.npz", {
    "x_train": images, "y_train": i64([0, 1, 2, 0, 1, 3]),
    "class_names": strings(["cat", "dog", "emu"]),
})
# x_train without y_train.
savez("no_labels.npz", {"x_train": images})
# One label fewer than images.
savez("label_count.npz", {"x_train": images, "y_train": i64([0, 1, 0, 1, 0])})
# x_test without y_test.
savez("test_without_labels.npz", {
    "x_train": images, "y_train": i64([0, 1, 0, 1, 0, 1]), "x_test": images,
})
# float32 images with a NaN (image 1, row 0, column 1): refused when the grid loads.
savez("float_nan.npz", {
    "x_train": f4((6, 4, 4), [0.5] * 17 + [float("nan")] + [0.5] * 78),
    "y_train": i64([0, 1, 0, 1, 0, 1]),
})
# Images of 5 dimensions.
savez("bad_shape.npz", {
    "x_train": u8((6, 2, 2, 2, 2), [1] * 96), "y_train": i64([0, 1, 0, 1, 0, 1]),
})
# Not a zip file at all.
with open(os.path.join(HERE, "not_a_zip.npz"), "wb") as f:
    f.write(b"x_train,y_train\n1,2\n")
# A good file, for a model that does not fit it (2 classes, 4x4 grey).
savez("good.npz", {"x_train": images, "y_train": i64([0, 1, 0, 1, 0, 1])})
