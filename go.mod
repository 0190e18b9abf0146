module github.com/arcavm/arca

go 1.26.0
