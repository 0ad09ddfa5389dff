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
        path, dump = sys.argv[1], sys.argv[2]
        def val(v):
            if isinstance(v, bytes): return v.decode("utf-8")
            if isinstance(v, np.ndarray): return v.tolist()
            if isinstance(v, np.generic): return v.item()
            return v
        def attrs(o): return {k: val(v) for k, v in o.attrs.items()}
        with h5py.File(path, "r") as f:
            d = f["/entry/data/data"]
            pl = d.id.get_create_plist()
            filters = [list(pl.get_filter(i)[:3]) for i in range(pl.get_nfilters())]
            out = {
                "shape": list(d.shape), "maxshape": list(d.maxshape), "chunks": list(d.chunks) if d.chunks else None,
                "dtype": d.dtype.str, "dtype_name": str(d.dtype),
                "filters": filters, "filters_by_id": {str(x[0]): list(x[2]) for x in filters},
                "image_id": f["/entry/data/image_id"][:].tolist(),
                "status": f["/entry/data/status"][:].tolist(),
                "root": attrs(f), "attrs": attrs(f), "entry": attrs(f["/entry"]), "group": attrs(f["/entry/data"]),
                "root_types": {k: f.attrs.get_id(k).dtype.str for k in f.attrs},
                "entry_class": val(f["/entry"].attrs.get("NX_class")),
                "data_class": val(f["/entry/data"].attrs.get("NX_class")),
                "signal": val(f["/entry/data"].attrs.get("signal")),
            }
            if dump != "-":
                with open(dump, "wb") as raw:
                    raw.write(d[:].tobytes())
        print(json.dumps(out))
        """;

    /// <summary>The file's layout and per-image datasets; with <paramref name="dumpPixels"/> the pixels go to that raw file.</summary>
    public static JsonElement Read(TestEnv env, string file, string? dumpPixels = null)
    {
        string output = Python.Run(env, Script, file, dumpPixels ?? "-", PluginPath);
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    public static long[] Longs(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt64()).ToArray();

    public static ulong[] ULongs(JsonElement e) => e.EnumerateArray().Select(x => x.GetUInt64()).ToArray();
}
