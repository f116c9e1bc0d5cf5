package server

import (
	"fmt"
	"slices"
	"sort"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/policies"
)

// method is one entry of the authorisation table.
type method struct {
	// roles may call the method at all; the policy then decides.
	roles []identity.Role
	// op is the policy operation; "" for methods outside policy (health,
	// reflection), which any authenticated caller in roles may call.
	op policies.Operation
	// subject extracts from the request what the policy decides on (keys,
	// product owner, amount). nil: nothing but caller and operation.
	subject func(s *Server, msg any) (policies.Request, error)
	// anonymous admits callers without a client certificate (enrolment,
	// which a one-time token authorises); a certificate, if presented,
	// must still be valid.
	anonymous bool
	// file marks a file stream: FileTimeout instead of RequestTimeout.
	file bool
	// session marks a card session stream (CardService.Session):
	// CardStreamTimeout instead of RequestTimeout.
	session bool
	// proposal marks a scheme-wide act that has no direct call: every
	// caller is refused, before any policy, with the dual-control
	// operation to propose instead.
	proposal string
	// refused, if set, is every caller's answer, before any policy: a
	// method the API keeps (it only grows) and samd no longer serves.
	refused error
}

// accessTable returns the deny-by-default authorisation table, keyed by
// full method name: a new one at each call, so that no caller can change
// the one a Server holds (New takes it once). A method absent from it
// cannot be called, and New refuses to start if a registered method is
// absent or an entry names no registered method. Every method with an
// operation is decided by the policy engine here, in the interceptor,
// before its handler runs.
func accessTable() map[string]method {
	return map[string]method{
		samdv1connect.DiversificationServiceDiversifiedKeyCheckValuesProcedure: {
			roles: []identity.Role{identity.RoleTerminal, identity.RolePersonalisation}, op: policies.OpDiversifyKCV, subject: diversifySubject},
		samdv1connect.CardServiceBeginAuthProcedure:      {roles: cardRoles, op: policies.OpCardAuth, subject: cardSubject},
		samdv1connect.CardServiceFinishAuthProcedure:     {roles: cardRoles, op: policies.OpCardAuth},
		samdv1connect.CardServiceProtectCommandProcedure: {roles: cardRoles, op: policies.OpCardAuth},
		samdv1connect.CardServiceCheckResponseProcedure:  {roles: cardRoles, op: policies.OpCardAuth},
		// A card session in one stream: card.auth when it opens; each step
		// is then authorised as its unary call (card_stream.go).
		samdv1connect.CardServiceSessionProcedure: {roles: cardRoles, op: policies.OpCardAuth, session: true},
		samdv1connect.CardServiceChangeKeyProcedure: {
			roles: []identity.Role{identity.RolePersonalisation}, op: policies.OpCardChangeKey, subject: cardSubject},
		samdv1connect.CardServiceExternalAuthenticateProcedure: {roles: cardRoles, refused: errChallengeGone},
		samdv1connect.CardServiceInternalAuthenticateProcedure: {roles: cardRoles, refused: errChallengeGone},
		samdv1connect.CardServiceVerifySUNProcedure: {
			roles: []identity.Role{identity.RoleTerminal, identity.RoleBackOffice, identity.RoleClearingHouse}, op: policies.OpSUNVerify, subject: sunSubject},
		samdv1connect.CardServiceVerifySUNBatchProcedure: {
			roles: []identity.Role{identity.RoleTerminal, identity.RoleBackOffice, identity.RoleClearingHouse}, op: policies.OpSUNVerify, subject: sunSubject},
		samdv1connect.MACServiceSealObjectsProcedure: {
			roles: []identity.Role{identity.RoleTerminal, identity.RolePersonalisation}, op: policies.OpMACSeal, subject: macSubjectFromServer},
		samdv1connect.MACServiceVerifyObjectsProcedure: {
			roles: []identity.Role{identity.RoleTerminal, identity.RoleBackOffice, identity.RoleClearingHouse}, op: policies.OpMACVerify, subject: macSubjectFromServer},
		samdv1connect.DiversificationServiceDiversifiedKeyCheckValueProcedure: {
			roles: []identity.Role{identity.RoleTerminal, identity.RolePersonalisation}, op: policies.OpDiversifyKCV, subject: diversifySubject},
		samdv1connect.DiversificationServiceExportDiversifiedKeyProcedure: {
			roles: []identity.Role{identity.RolePersonalisation}, op: policies.OpDiversifyExport, subject: diversifySubject},
		samdv1connect.ValueServiceAuthorizeValueProcedure: {
			roles: []identity.Role{identity.RoleTerminal}, op: policies.OpValueAuthorize, subject: valueSubject},
		samdv1connect.ValueServiceCancelValueProcedure: {
			roles: []identity.Role{identity.RoleTerminal}, op: policies.OpValueCancel},
		samdv1connect.ValueServiceVerifyValueAuthorizationProcedure: {
			roles: []identity.Role{identity.RoleBackOffice, identity.RoleClearingHouse}, op: policies.OpValueVerify, subject: verifySubject},
		samdv1connect.AdminServiceGetAllowanceProcedure:   {roles: officers, op: policies.OpAllowanceRead},
		samdv1connect.AdminServiceTopUpAllowanceProcedure: {roles: officers, op: policies.OpAllowanceTopUp},
		samdv1connect.AdminServiceResetAllowanceProcedure: {roles: officers, op: policies.OpAllowanceReset},
		samdv1connect.AdminServiceReloadPoliciesProcedure: {roles: officers, op: policies.OpPolicyReload, proposal: dualcontrol.OpPolicyActivate},

		samdv1connect.PKIServiceCreateCAProcedure:             {roles: officers, op: policies.OpPKICA, proposal: dualcontrol.OpCACreate},
		samdv1connect.PKIServiceListCAsProcedure:              {roles: allRoles, op: policies.OpPKICRL},
		samdv1connect.PKIServiceIssueCertificateProcedure:     {roles: officers, op: policies.OpPKIIssue, subject: issueSubject},
		samdv1connect.PKIServiceCreateEnrolmentTokenProcedure: {roles: officers, op: policies.OpPKIIssue},
		samdv1connect.PKIServiceCreateSignerProcedure:         {roles: officers, op: policies.OpPKIIssue},
		samdv1connect.PKIServiceRevokeProcedure:               {roles: officers, op: policies.OpPKIRevoke},
		samdv1connect.PKIServiceRenewProcedure:                {roles: clientRoles, op: policies.OpPKIRenew},
		samdv1connect.PKIServiceGetCRLProcedure:               {roles: allRoles, op: policies.OpPKICRL},
		samdv1connect.PKIServiceExportSchemeCRLProcedure:      {roles: officers, op: policies.OpPKICRL},
		samdv1connect.PKIServiceEnrolProcedure:                {roles: []identity.Role{identity.RoleUnknown}, anonymous: true},
		samdv1connect.FileServiceNextFileNameProcedure:        {roles: []identity.Role{identity.RoleBackOffice}, op: policies.OpFileSign},
		samdv1connect.FileServiceSignFileProcedure:            {roles: []identity.Role{identity.RoleBackOffice}, op: policies.OpFileSign, file: true},
		samdv1connect.FileServiceVerifyFileProcedure:          {roles: []identity.Role{identity.RoleClearingHouse}, op: policies.OpFileVerify, file: true},
		// Negative lists: the owner's back office and officers change and
		// watch its lists; receivers fetch and acknowledge them.
		samdv1connect.ListServiceAddEntriesProcedure:    {roles: listWriters, op: policies.OpListWrite, subject: listWriteSubject(false)},
		samdv1connect.ListServiceRemoveEntriesProcedure: {roles: listWriters, op: policies.OpListWrite, subject: listWriteSubject(true)},
		samdv1connect.ListServiceFetchListProcedure:     {roles: listReaders, op: policies.OpListRead, file: true},
		samdv1connect.ListServiceAckListProcedure:       {roles: listReceivers, op: policies.OpListAck},
		samdv1connect.ListServiceListStatusProcedure:    {roles: listWriters, op: policies.OpListStatus, subject: listStatusSubject},
		// Officers: the registry decides (dualcontrol.Officers.Admit), on the
		// admin listener only.
		samdv1connect.OfficerServiceProposeProcedure:         {roles: officers},
		samdv1connect.OfficerServiceApproveProcedure:         {roles: officers},
		samdv1connect.OfficerServiceRejectProcedure:          {roles: officers},
		samdv1connect.OfficerServiceSubmitComponentProcedure: {roles: officers},
		samdv1connect.OfficerServiceGetProposalProcedure:     {roles: officers},
		samdv1connect.OfficerServiceListProposalsProcedure:   {roles: officers},
		samdv1connect.OfficerServiceInventoryProcedure:       {roles: officers},
		// The console's reads: scoped to the officer's operator in the
		// handler (officers_console.go).
		samdv1connect.OfficerServiceSearchAuditProcedure:        {roles: officers},
		samdv1connect.OfficerServiceStatusProcedure:             {roles: officers},
		samdv1connect.OfficerServiceSearchCertificatesProcedure: {roles: officers},
		samdv1connect.OfficerServiceNegativeListsProcedure:      {roles: officers},

		healthCheckProcedure: {roles: allRoles},
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      {roles: allRoles},
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": {roles: allRoles},
	}
}

var (
	allRoles  = []identity.Role{identity.RoleTerminal, identity.RoleBackOffice, identity.RoleClearingHouse, identity.RolePersonalisation, identity.RoleOfficer}
	officers  = []identity.Role{identity.RoleOfficer}
	cardRoles = []identity.Role{identity.RoleTerminal, identity.RolePersonalisation}
	// listWriters change an owner's lists, listReceivers acknowledge
	// them (lists.Receipt's receivers), listReaders fetch them.
	listWriters   = []identity.Role{identity.RoleBackOffice, identity.RoleOfficer}
	listReceivers = []identity.Role{identity.RoleTerminal, identity.RoleBackOffice, identity.RoleClearingHouse}
	listReaders   = []identity.Role{identity.RoleTerminal, identity.RoleBackOffice, identity.RoleClearingHouse, identity.RoleOfficer}
	// clientRoles hold certificates they renew themselves.
	clientRoles = []identity.Role{identity.RoleTerminal, identity.RoleBackOffice, identity.RoleClearingHouse, identity.RolePersonalisation}
)

// procedures lists the full method names of a service in samd's API.
func procedures(service string) []string {
	sd := samdv1.File_samd_v1_samd_proto.Services().ByName(protoName(service))
	var out []string
	for i := 0; i < sd.Methods().Len(); i++ {
		out = append(out, "/"+service+"/"+string(sd.Methods().Get(i).Name()))
	}
	return out
}

// streamingProcedures lists the methods of a service in samd's API whose
// requests stream.
func streamingProcedures(service string) []string {
	sd := samdv1.File_samd_v1_samd_proto.Services().ByName(protoName(service))
	var out []string
	for i := 0; i < sd.Methods().Len(); i++ {
		if m := sd.Methods().Get(i); m.IsStreamingClient() {
			out = append(out, "/"+service+"/"+string(m.Name()))
		}
	}
	return out
}

// checkTable fails when the table and the registered methods differ.
func checkTable(table map[string]method, registered []string) error {
	var missing, stale []string
	for _, p := range registered {
		if len(table[p].roles) == 0 {
			missing = append(missing, p)
		}
	}
	for p := range table {
		if !slices.Contains(registered, p) {
			stale = append(stale, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 || len(stale) > 0 {
		return fmt.Errorf("server: authorisation table does not match the registered methods: unguarded %v, unknown %v", missing, stale)
	}
	return nil
}
