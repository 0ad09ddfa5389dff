using System.Text.Json;
using StdDaq.Tests.Support;

namespace StdDaq.Tests.Writer;

/// <summary>
/// Reads a written file back with h5py (Debian's python3-h5py, through Debian's bitshuffle plugin
/// for compressed files): the independent reader of the writer tests.
/// </summary>
public static class H5py
{
    public const string PluginPath = "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins";

    // Two views of the same facts: the layout as h5py's low level gives it (root/entry/group
    // attributes, dtype.str, filter list) and the plain names of a quick check (attrs, dtype name,
    // filters by id, NX classes).
    private const string Script = """
        import json, os, sys
        os.environ["HDF5_PLUGIN_PATH"] = sys.argv[3]
        import h5py, numpy as np
        path, dump, swmr = sys.argv[1], sys.argv[2], sys.argv[4] == "swmr"
        def val(v):
            if isinstance(v, bytes): return v.decode("utf-8")
            if isinstance(v, np.ndarray): return v.tolist()
            if isinstance(v, np.generic): return v.item()
            return v
        def attrs(o): return {k: val(v) for k, v in o.attrs.items()}
        with h5py.File(path, "r", swmr=swmr) as f:
            d = f["/entry/data/data"]
            pl = d.id.get_create_plist()
            filters = [list(pl.get_filter(i)[:3]) for i in range(pl.get_nfilters())]
            out = {
                "shape": list(d.shape), "maxshape": list(d.maxshape), "chunks": list(d.chunks) if d.chunks else None,
                "dtype": d.dtype.str, "dtype_name": str(d.dtype),
                "filters": filters, "filters_by_id": {str(x[0]): list(x[2]) for x in filters},
                "image_id": f["/entry/data/image_id"][:].tolist(),
                "status": f["/entry/data/status"][:].tolist(),
                "frame_index": f["/entry/data/frame_index"][:].tolist(),
                "receive_time": f["/entry/data/receive_time"][:].tolist(),
                "receive_time_units": val(f["/entry/data/receive_time"].attrs.get("units")),
                "n_images_written": int(f["/entry/data/n_images_written"][()]),
                "end_time": val(f["/entry/end_time"][()]),
                "root": attrs(f), "attrs": attrs(f), "entry": attrs(f["/entry"]), "group": attrs(f["/entry/data"]),
                "root_types": {k: f.attrs.get_id(k).dtype.str for k in f.attrs},
                "entry_class": val(f["/entry"].attrs.get("NX_class")),
                "data_class": val(f["/entry/data"].attrs.get("NX_class")),
                "signal": val(f["/entry/data"].attrs.get("signal")),
                "n_omega": f["/entry/sample/transformations/omega"].shape[0] if "/entry/sample/transformations/omega" in f else None,
            }
            if dump != "-":
                with open(dump, "wb") as raw:
                    raw.write(d[:].tobytes())
        print(json.dumps(out))
        """;

    /// <summary>
    /// The file's layout and per-image datasets; with <paramref name="dumpPixels"/> the pixels go to
    /// that raw file. With <paramref name="swmr"/>, h5py opens the file as a SWMR reader (which
    /// reads a file that is being written, or whose writer died), else with its defaults.
    /// </summary>
    public static JsonElement Read(TestEnv env, string file, string? dumpPixels = null, bool swmr = false)
    {
        string output = Python.Run(env, Script, file, dumpPixels ?? "-", PluginPath, swmr ? "swmr" : "plain");
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    // Every object of the file by path: groups and datasets with their attributes, small datasets
    // with their values (strings decoded), large ones with shape and dtype only, soft links by target.
    private const string TreeScript = """
        import json, os, sys
        os.environ["HDF5_PLUGIN_PATH"] = sys.argv[3]
        import h5py, numpy as np
        path, mask_dump = sys.argv[1], sys.argv[2]
        def val(v):
            if isinstance(v, bytes): return v.decode("utf-8")
            if isinstance(v, np.ndarray): return [val(x) for x in v.tolist()] if v.dtype.kind == "S" else v.tolist()
            if isinstance(v, np.generic): return v.item()
            return v
        out = {}
        with h5py.File(path, "r") as f:
            out["/"] = {"kind": "group", "attrs": {k: val(v) for k, v in f.attrs.items()}}
            def walk(group):
                for key in group:
                    p = group.name.rstrip("/") + "/" + key
                    link = group.get(key, getlink=True)
                    if isinstance(link, h5py.SoftLink):
                        out[p] = {"kind": "softlink", "target": link.path}
                        continue
                    visit(p, group[key])
                    if isinstance(group[key], h5py.Group):
                        walk(group[key])
            def visit(p, o):
                e = {"attrs": {k: val(v) for k, v in o.attrs.items()},
                     "attr_types": {k: o.attrs.get_id(k).dtype.str for k in o.attrs}}
                if isinstance(o, h5py.Group):
                    e["kind"] = "group"
                else:
                    e.update(kind="dataset", shape=list(o.shape), dtype=o.dtype.str)
                    if o.size <= 4096 or o.dtype.kind == "S":
                        e["value"] = val(o[()])
                out[p] = e
            walk(f)
            if mask_dump != "-":
                with open(mask_dump, "wb") as raw:
                    raw.write(f["/entry/instrument/detector/pixel_mask"][()].astype("<u4").tobytes())
        print(json.dumps(out))
        """;

    /// <summary>
    /// Every object of the file by absolute path (kind, attrs, attr_types, shape, dtype, value of
    /// small datasets, target of soft links); with <paramref name="dumpMask"/> the pixel_mask goes
    /// to that raw file (uint32 little-endian, row-major).
    /// </summary>
    public static JsonElement Tree(TestEnv env, string file, string? dumpMask = null)
    {
        string output = Python.Run(env, TreeScript, file, dumpMask ?? "-", PluginPath);
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    public static long[] Longs(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt64()).ToArray();

    public static ulong[] ULongs(JsonElement e) => e.EnumerateArray().Select(x => x.GetUInt64()).ToArray();
}
