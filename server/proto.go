package server

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// protoName returns the short name of a fully-qualified service name.
func protoName(service string) protoreflect.Name {
	return protoreflect.Name(service[strings.LastIndexByte(service, '.')+1:])
}
