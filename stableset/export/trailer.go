package export

// Trailer is what an export's verified trailer says of the export:
// its record count and the SHA-256 of every line before the trailer.
type Trailer struct {
	Count  int64
	SHA256 [32]byte
}
