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

    private const string Script = """
        import json, os, sys
        os.environ["HDF5_PLUGIN_PATH"] = sys.argv[3]
        import h5py, numpy as np
        path, dump = sys.argv[1], sys.argv[2]
        def text(v):
            if isinstance(v, bytes): return v.decode()
            if isinstance(v, np.ndarray): return v.tolist()
            if isinstance(v, np.generic): return v.item()
            return v
        with h5py.File(path, "r") as f:
            d = f["/entry/data/data"]
            out = {
                "shape": list(d.shape), "dtype": str(d.dtype), "chunks": list(d.chunks) if d.chunks else None,
                "filters": {k: text(v) for k, v in d._filters.items()} if hasattr(d, "_filters") else None,
                "image_id": f["/entry/data/image_id"][:].tolist(),
                "status": f["/entry/data/status"][:].tolist(),
                "attrs": {k: text(v) for k, v in f.attrs.items()},
                "entry_class": text(f["/entry"].attrs.get("NX_class")),
                "data_class": text(f["/entry/data"].attrs.get("NX_class")),
                "signal": text(f["/entry/data"].attrs.get("signal")),
            }
            if dump != "-":
                d[...].tofile(dump)
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
