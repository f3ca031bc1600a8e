package rpc

import "hash/crc64"

// pegasusPoly is the reversed polynomial constant of the Pegasus CRC-64. With the
// standard library's reflected table, init and final xor of all ones, this gives the
// partition hash of the reference server.
const pegasusPoly = 0x9a6c9329ac4bc9b5

var crcTable = crc64.MakeTable(pegasusPoly)

// PartitionHash returns the Pegasus partition hash of a hash key.
func PartitionHash(hashKey []byte) uint64 {
	return crc64.Checksum(hashKey, crcTable)
}

// PartitionIndex maps a partition hash onto one of partitionCount partitions.
// partitionCount must be positive (a power of two in a valid table).
func PartitionIndex(hash uint64, partitionCount int) int {
	return int(hash % uint64(partitionCount))
}
