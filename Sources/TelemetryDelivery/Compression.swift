import CZlib
import CZstd

/// Why a payload could not be compressed or decompressed.
public struct CompressionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Request bodies for TELEMETRY_COMPRESSION: gzip (zlib's deflate with the gzip wrapper, what every HTTP
/// server and collector accepts) or zstd (smaller and faster, where the endpoint takes it).
///
/// Each call is independent and allocates its own stream state: safe from any thread.
public enum PayloadCompressor {
    /// Levels used when the caller gives none. gzip 3 rather than zlib's default 6: on batches of execution
    /// documents it compresses 2.5x faster (about 450 against 180 MB/s here) for bodies within a few tenths of a
    /// percent of the raw size of level 6's (1.9% against 1.6%), and the daemon shares two cores with the
    /// scripts it observes. zstd: its own default, 3.
    public static let defaultGzipLevel = 3
    public static let defaultZstdLevel = 3
    /// `decompress` refuses output beyond this by default: a small hostile input must not take all memory.
    public static let defaultDecompressedLimit = 1 << 30

    /// `bytes` compressed as `compression` says (`.none` returns them unchanged). `level`: gzip 0...9,
    /// zstd `ZSTD_minCLevel()...ZSTD_maxCLevel()` (1...19 is the usual range); nil for the default.
    public static func compress(_ bytes: [UInt8], _ compression: PayloadCompression, level: Int? = nil) throws -> [UInt8] {
        switch compression {
        case .none: return bytes
        case .gzip: return try gzip(bytes, level: level ?? defaultGzipLevel)
        case .zstd: return try zstd(bytes, level: level ?? defaultZstdLevel)
        }
    }

    /// The original bytes of a `compress` result (or of any gzip or zstd data: concatenated gzip members and
    /// zstd frames, with or without their content size, are all read).
    public static func decompress(_ bytes: [UInt8], _ compression: PayloadCompression) throws -> [UInt8] {
        try decompress(bytes, compression, limit: defaultDecompressedLimit)
    }

    /// As `decompress(_:_:)`, failing once the output would pass `limit` bytes.
    public static func decompress(_ bytes: [UInt8], _ compression: PayloadCompression, limit: Int) throws -> [UInt8] {
        switch compression {
        case .none: return bytes
        case .gzip: return try gunzip(bytes, limit: limit)
        case .zstd: return try unzstd(bytes, limit: limit)
        }
    }

    // MARK: gzip

    private static func zlibMessage(_ stream: z_stream, _ code: Int32) -> String {
        if let message = stream.msg { return String(cString: message) }
        switch code {
        case Z_MEM_ERROR: return "out of memory"
        case Z_BUF_ERROR: return "no progress possible"
        case Z_DATA_ERROR: return "invalid data"
        case Z_STREAM_ERROR: return "invalid stream state"
        default: return "zlib error \(code)"
        }
    }

    private static func gzip(_ bytes: [UInt8], level: Int) throws -> [UInt8] {
        guard (0...9).contains(level) else {
            throw CompressionError("gzip level \(level) is out of range: use 0 (store) to 9 (smallest)")
        }
        guard bytes.count < Int(UInt32.max) else {
            throw CompressionError("a payload of \(bytes.count) bytes is too large to gzip in one piece")
        }
        var stream = z_stream()
        var code = telemetry_deflate_init_gzip(&stream, Int32(level))
        guard code == Z_OK else {
            throw CompressionError("gzip: could not start the compressor: \(zlibMessage(stream, code))")
        }
        defer { deflateEnd(&stream) }
        // deflateBound covers the gzip header and trailer: one Z_FINISH call always completes into it.
        let capacity = Int(deflateBound(&stream, uLong(bytes.count)))
        let output = [UInt8](unsafeUninitializedCapacity: capacity) { out, initialized in
            bytes.withUnsafeBufferPointer { input in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(capacity)
                code = deflate(&stream, Z_FINISH)
                initialized = capacity - Int(stream.avail_out)
            }
        }
        guard code == Z_STREAM_END else {
            throw CompressionError("gzip: compression did not finish: \(zlibMessage(stream, code))")
        }
        return output
    }

    private static func gunzip(_ bytes: [UInt8], limit: Int) throws -> [UInt8] {
        guard !bytes.isEmpty else { throw CompressionError("gzip: the data is empty (not even a header)") }
        guard bytes.count < Int(UInt32.max) else {
            throw CompressionError("gzip: \(bytes.count) bytes are too many to decompress in one piece")
        }
        var stream = z_stream()
        var code = telemetry_inflate_init_gzip(&stream)
        guard code == Z_OK else {
            throw CompressionError("gzip: could not start the decompressor: \(zlibMessage(stream, code))")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        output.reserveCapacity(min(limit, max(bytes.count * 4, 4096)))
        let chunkSize = 1 << 16
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        try bytes.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.avail_in = uInt(input.count)
            while true {
                code = chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(chunkSize)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunkSize - Int(stream.avail_out)
                guard output.count + produced <= limit else {
                    throw CompressionError("gzip: the data decompresses to more than \(limit) bytes")
                }
                output.append(contentsOf: chunk[0..<produced])
                switch code {
                case Z_OK:
                    continue
                case Z_STREAM_END:
                    // Another gzip member may follow (RFC 1952 allows several): read it too.
                    if stream.avail_in == 0 { return }
                    code = inflateReset(&stream)
                    guard code == Z_OK else {
                        throw CompressionError("gzip: \(zlibMessage(stream, code))")
                    }
                case Z_BUF_ERROR where stream.avail_in == 0:
                    throw CompressionError("gzip: the data is truncated (it ends inside the stream)")
                case Z_BUF_ERROR:
                    continue  // output was full; more room comes with the next chunk
                case Z_NEED_DICT:
                    throw CompressionError("gzip: the data needs a preset dictionary")
                default:
                    throw CompressionError("gzip: the data is not valid gzip: \(zlibMessage(stream, code))")
                }
            }
        }
        return output
    }

    // MARK: zstd

    private static func zstdError(_ code: Int) -> String {
        String(cString: ZSTD_getErrorName(code))
    }

    private static func zstd(_ bytes: [UInt8], level: Int) throws -> [UInt8] {
        let range = Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel())
        guard range.contains(level) else {
            throw CompressionError("zstd level \(level) is out of range: 1 to 19 is usual (0 is the default, negative is faster, up to \(range.upperBound))")
        }
        let capacity = ZSTD_compressBound(bytes.count)
        guard ZSTD_isError(capacity) == 0 else {
            throw CompressionError("zstd: a payload of \(bytes.count) bytes is too large")
        }
        var result = 0
        // ZSTD_compress writes one frame with its content size, so decompressors can size their output.
        let output = [UInt8](unsafeUninitializedCapacity: capacity) { out, initialized in
            bytes.withUnsafeBytes { input in
                result = ZSTD_compress(out.baseAddress, capacity, input.baseAddress, input.count, Int32(level))
            }
            initialized = ZSTD_isError(result) == 0 ? result : 0
        }
        guard ZSTD_isError(result) == 0 else { throw CompressionError("zstd: \(zstdError(result))") }
        return output
    }

    private static func unzstd(_ bytes: [UInt8], limit: Int) throws -> [UInt8] {
        guard !bytes.isEmpty else { throw CompressionError("zstd: the data is empty (not even a frame header)") }
        guard let context = ZSTD_createDCtx() else { throw CompressionError("zstd: out of memory") }
        defer { ZSTD_freeDCtx(context) }
        var output: [UInt8] = []
        // The first frame's content size, when it was written (ZSTD_compress does; streaming writers may not:
        // ZSTD_CONTENTSIZE_UNKNOWN is UInt64.max, ZSTD_CONTENTSIZE_ERROR UInt64.max - 1). Only a hint here: the
        // streaming decoder below handles unknown sizes and several frames alike.
        let declared = bytes.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        if declared < UInt64.max - 1 {
            output.reserveCapacity(Int(min(declared, UInt64(limit))))
        }
        let chunkSize = ZSTD_DStreamOutSize()
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        try bytes.withUnsafeBytes { source in
            var input = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
            var last = 0
            // zstd does not consume a frame's last byte before it has flushed all of its output, so reading
            // until the input is used up also drains the output.
            while input.pos < input.size {
                let produced = chunk.withUnsafeMutableBytes { out -> Int in
                    var buffer = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                    last = ZSTD_decompressStream(context, &buffer, &input)
                    return buffer.pos
                }
                guard ZSTD_isError(last) == 0 else {
                    throw CompressionError("zstd: the data is not valid zstd: \(zstdError(last))")
                }
                guard output.count + produced <= limit else {
                    throw CompressionError("zstd: the data decompresses to more than \(limit) bytes")
                }
                output.append(contentsOf: chunk[0..<produced])
            }
            guard last == 0 else {
                throw CompressionError("zstd: the data is truncated (it ends inside a frame)")
            }
        }
        return output
    }
}
