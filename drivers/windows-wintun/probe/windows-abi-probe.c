/*
 * The Windows ABI facts ngrokd's Windows code relies on, computed by a compiler from the real
 * headers (mingw-w64's netioapi.h, ws2def.h, ws2ipdef.h, ifdef.h, nldef.h, ipifcons.h, winerror.h,
 * winreg.h, winsvc.h, sddl.h, accctrl.h, aclapi.h, and wintun.h when built with -DNGROKD_WINTUN_H).
 *
 * Two ways to read them, both used by probe/regenerate.mjs:
 * - at compile time: every value is an initialised 64-bit constant in the section `.ngkval`, and
 *   its name a NUL-terminated string in `.ngkname`, in the same order; the script copies both
 *   sections out of the object file (objcopy), so no Windows machine is needed;
 * - at run time (under Wine, or on Windows): main() prints `name value` per line, plus what the
 *   iphlpapi functions of the running system answer.
 *
 * Do not reorder by hand for no reason: the order is only the order of the output.
 */
#include <winsock2.h>
#include <windows.h>
#include <ws2def.h>
#include <ws2ipdef.h>
#include <iphlpapi.h>
#include <netioapi.h>
#include <ifdef.h>
#include <nldef.h>
#include <ipifcons.h>
#include <ipexport.h>
#include <winreg.h>
#include <winsvc.h>
#include <sddl.h>
#include <accctrl.h>
#include <aclapi.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#ifdef NGROKD_WINTUN_H
#include NGROKD_WINTUN_H
#endif


#define OFF(T, F) offsetof(T, F)

#define VALUES(X)                                                                                       \
  /* ws2def.h / ws2ipdef.h */                                                                           \
  X("AF_UNSPEC", AF_UNSPEC)                                                                             \
  X("AF_INET", AF_INET)                                                                                 \
  X("AF_INET6", AF_INET6)                                                                               \
  X("sizeof SOCKADDR_IN", sizeof(SOCKADDR_IN))                                                          \
  X("SOCKADDR_IN.sin_family", OFF(SOCKADDR_IN, sin_family))                                             \
  X("SOCKADDR_IN.sin_port", OFF(SOCKADDR_IN, sin_port))                                                 \
  X("SOCKADDR_IN.sin_addr", OFF(SOCKADDR_IN, sin_addr))                                                 \
  X("sizeof SOCKADDR_IN6", sizeof(SOCKADDR_IN6))                                                        \
  X("sizeof SOCKADDR_INET", sizeof(SOCKADDR_INET))                                                      \
  X("SOCKADDR_INET.si_family", OFF(SOCKADDR_INET, si_family))                                           \
  /* ifdef.h */                                                                                         \
  X("sizeof NET_LUID", sizeof(NET_LUID))                                                                \
  /* ipifcons.h */                                                                                      \
  X("IF_TYPE_SOFTWARE_LOOPBACK", IF_TYPE_SOFTWARE_LOOPBACK)                                             \
  X("IF_TYPE_PROP_VIRTUAL", IF_TYPE_PROP_VIRTUAL)                                                       \
  /* nldef.h */                                                                                         \
  X("IpPrefixOriginManual", IpPrefixOriginManual)                                                       \
  X("IpPrefixOriginUnchanged", IpPrefixOriginUnchanged)                                                 \
  X("IpSuffixOriginManual", IpSuffixOriginManual)                                                       \
  X("IpSuffixOriginUnchanged", IpSuffixOriginUnchanged)                                                 \
  X("IpDadStateInvalid", IpDadStateInvalid)                                                             \
  X("IpDadStatePreferred", IpDadStatePreferred)                                                         \
  /* netioapi.h */                                                                                      \
  X("sizeof MIB_UNICASTIPADDRESS_ROW", sizeof(MIB_UNICASTIPADDRESS_ROW))                                \
  X("MIB_UNICASTIPADDRESS_ROW.Address", OFF(MIB_UNICASTIPADDRESS_ROW, Address))                         \
  X("MIB_UNICASTIPADDRESS_ROW.InterfaceLuid", OFF(MIB_UNICASTIPADDRESS_ROW, InterfaceLuid))             \
  X("MIB_UNICASTIPADDRESS_ROW.InterfaceIndex", OFF(MIB_UNICASTIPADDRESS_ROW, InterfaceIndex))           \
  X("MIB_UNICASTIPADDRESS_ROW.PrefixOrigin", OFF(MIB_UNICASTIPADDRESS_ROW, PrefixOrigin))               \
  X("MIB_UNICASTIPADDRESS_ROW.SuffixOrigin", OFF(MIB_UNICASTIPADDRESS_ROW, SuffixOrigin))               \
  X("MIB_UNICASTIPADDRESS_ROW.ValidLifetime", OFF(MIB_UNICASTIPADDRESS_ROW, ValidLifetime))             \
  X("MIB_UNICASTIPADDRESS_ROW.PreferredLifetime", OFF(MIB_UNICASTIPADDRESS_ROW, PreferredLifetime))     \
  X("MIB_UNICASTIPADDRESS_ROW.OnLinkPrefixLength", OFF(MIB_UNICASTIPADDRESS_ROW, OnLinkPrefixLength))   \
  X("MIB_UNICASTIPADDRESS_ROW.SkipAsSource", OFF(MIB_UNICASTIPADDRESS_ROW, SkipAsSource))               \
  X("MIB_UNICASTIPADDRESS_ROW.DadState", OFF(MIB_UNICASTIPADDRESS_ROW, DadState))                       \
  X("MIB_UNICASTIPADDRESS_ROW.ScopeId", OFF(MIB_UNICASTIPADDRESS_ROW, ScopeId))                         \
  X("MIB_UNICASTIPADDRESS_ROW.CreationTimeStamp", OFF(MIB_UNICASTIPADDRESS_ROW, CreationTimeStamp))     \
  X("sizeof MIB_UNICASTIPADDRESS_ROW.SkipAsSource", sizeof(((MIB_UNICASTIPADDRESS_ROW *)0)->SkipAsSource)) \
  X("MIB_UNICASTIPADDRESS_TABLE.Table", OFF(MIB_UNICASTIPADDRESS_TABLE, Table))                         \
  /* ipexport.h */                                                                                      \
  X("MAX_ADAPTER_NAME", MAX_ADAPTER_NAME)                                                               \
  /* winerror.h */                                                                                      \
  X("ERROR_SUCCESS", ERROR_SUCCESS)                                                                     \
  X("ERROR_FILE_NOT_FOUND", ERROR_FILE_NOT_FOUND)                                                       \
  X("ERROR_PATH_NOT_FOUND", ERROR_PATH_NOT_FOUND)                                                       \
  X("ERROR_ACCESS_DENIED", ERROR_ACCESS_DENIED)                                                         \
  X("ERROR_INVALID_HANDLE", ERROR_INVALID_HANDLE)                                                       \
  X("ERROR_SHARING_VIOLATION", ERROR_SHARING_VIOLATION)                                                 \
  X("ERROR_LOCK_VIOLATION", ERROR_LOCK_VIOLATION)                                                       \
  X("ERROR_HANDLE_EOF", ERROR_HANDLE_EOF)                                                               \
  X("ERROR_INVALID_PARAMETER", ERROR_INVALID_PARAMETER)                                                 \
  X("ERROR_MOD_NOT_FOUND", ERROR_MOD_NOT_FOUND)                                                         \
  X("ERROR_BAD_EXE_FORMAT", ERROR_BAD_EXE_FORMAT)                                                       \
  X("ERROR_ALREADY_EXISTS", ERROR_ALREADY_EXISTS)                                                       \
  X("ERROR_NO_MORE_ITEMS", ERROR_NO_MORE_ITEMS)                                                         \
  X("ERROR_PIPE_BUSY", ERROR_PIPE_BUSY)                                                                 \
  X("ERROR_INVALID_DATA", ERROR_INVALID_DATA)                                                           \
  X("ERROR_SERVICE_EXISTS", ERROR_SERVICE_EXISTS)                                                       \
  X("ERROR_DUPLICATE_SERVICE_NAME", ERROR_DUPLICATE_SERVICE_NAME)                                       \
  X("ERROR_SERVICE_DOES_NOT_EXIST", ERROR_SERVICE_DOES_NOT_EXIST)                                       \
  X("ERROR_SERVICE_MARKED_FOR_DELETE", ERROR_SERVICE_MARKED_FOR_DELETE)                                 \
  X("ERROR_SERVICE_ALREADY_RUNNING", ERROR_SERVICE_ALREADY_RUNNING)                                     \
  X("ERROR_SERVICE_CANNOT_ACCEPT_CTRL", ERROR_SERVICE_CANNOT_ACCEPT_CTRL)                               \
  X("ERROR_SERVICE_NOT_ACTIVE", ERROR_SERVICE_NOT_ACTIVE)                                               \
  X("ERROR_NOT_FOUND", ERROR_NOT_FOUND)                                                                 \
  X("ERROR_ALREADY_INITIALIZED", ERROR_ALREADY_INITIALIZED)                                             \
  X("ERROR_NONE_MAPPED", ERROR_NONE_MAPPED)                                                             \
  X("ERROR_DUP_NAME", ERROR_DUP_NAME)                                                                   \
  X("ERROR_OBJECT_ALREADY_EXISTS", ERROR_OBJECT_ALREADY_EXISTS)                                         \
  /* winbase.h / synchapi.h */                                                                          \
  X("INFINITE", INFINITE)                                                                               \
  X("WAIT_OBJECT_0", WAIT_OBJECT_0)                                                                     \
  X("WAIT_FAILED", WAIT_FAILED)                                                                         \
  /* winreg.h / winnt.h */                                                                              \
  X("HKEY_LOCAL_MACHINE", (ULONG)(ULONG_PTR)HKEY_LOCAL_MACHINE)                                         \
  X("REG_SZ", REG_SZ)                                                                                   \
  X("REG_DWORD", REG_DWORD)                                                                             \
  X("REG_MULTI_SZ", REG_MULTI_SZ)                                                                       \
  X("REG_OPTION_NON_VOLATILE", REG_OPTION_NON_VOLATILE)                                                 \
  X("REG_CREATED_NEW_KEY", REG_CREATED_NEW_KEY)                                                         \
  X("KEY_QUERY_VALUE", KEY_QUERY_VALUE)                                                                 \
  X("KEY_SET_VALUE", KEY_SET_VALUE)                                                                     \
  X("KEY_READ", KEY_READ)                                                                               \
  X("KEY_WRITE", KEY_WRITE)                                                                             \
  X("KEY_ALL_ACCESS", KEY_ALL_ACCESS)                                                                   \
  X("KEY_WOW64_64KEY", KEY_WOW64_64KEY)                                                                 \
  X("DELETE", DELETE)                                                                                   \
  /* winsvc.h / winnt.h */                                                                              \
  X("SC_MANAGER_CONNECT", SC_MANAGER_CONNECT)                                                           \
  X("SC_MANAGER_CREATE_SERVICE", SC_MANAGER_CREATE_SERVICE)                                             \
  X("SERVICE_QUERY_CONFIG", SERVICE_QUERY_CONFIG)                                                       \
  X("SERVICE_CHANGE_CONFIG", SERVICE_CHANGE_CONFIG)                                                     \
  X("SERVICE_QUERY_STATUS", SERVICE_QUERY_STATUS)                                                       \
  X("SERVICE_START", SERVICE_START)                                                                     \
  X("SERVICE_STOP", SERVICE_STOP)                                                                       \
  X("SERVICE_ALL_ACCESS", SERVICE_ALL_ACCESS)                                                           \
  X("SERVICE_WIN32_OWN_PROCESS", SERVICE_WIN32_OWN_PROCESS)                                             \
  X("SERVICE_AUTO_START", SERVICE_AUTO_START)                                                           \
  X("SERVICE_DEMAND_START", SERVICE_DEMAND_START)                                                       \
  X("SERVICE_ERROR_NORMAL", SERVICE_ERROR_NORMAL)                                                       \
  X("SERVICE_CONFIG_DESCRIPTION", SERVICE_CONFIG_DESCRIPTION)                                           \
  X("SERVICE_CONFIG_FAILURE_ACTIONS", SERVICE_CONFIG_FAILURE_ACTIONS)                                   \
  X("SERVICE_CONFIG_FAILURE_ACTIONS_FLAG", SERVICE_CONFIG_FAILURE_ACTIONS_FLAG)                         \
  X("SC_ACTION_NONE", SC_ACTION_NONE)                                                                   \
  X("SC_ACTION_RESTART", SC_ACTION_RESTART)                                                             \
  X("SC_ACTION_RUN_COMMAND", SC_ACTION_RUN_COMMAND)                                                     \
  X("sizeof SC_ACTION", sizeof(SC_ACTION))                                                              \
  X("SC_ACTION.Delay", OFF(SC_ACTION, Delay))                                                           \
  X("sizeof SERVICE_FAILURE_ACTIONSW", sizeof(SERVICE_FAILURE_ACTIONSW))                                \
  X("SERVICE_FAILURE_ACTIONSW.dwResetPeriod", OFF(SERVICE_FAILURE_ACTIONSW, dwResetPeriod))             \
  X("SERVICE_FAILURE_ACTIONSW.lpRebootMsg", OFF(SERVICE_FAILURE_ACTIONSW, lpRebootMsg))                 \
  X("SERVICE_FAILURE_ACTIONSW.lpCommand", OFF(SERVICE_FAILURE_ACTIONSW, lpCommand))                     \
  X("SERVICE_FAILURE_ACTIONSW.cActions", OFF(SERVICE_FAILURE_ACTIONSW, cActions))                       \
  X("SERVICE_FAILURE_ACTIONSW.lpsaActions", OFF(SERVICE_FAILURE_ACTIONSW, lpsaActions))                 \
  X("sizeof SERVICE_FAILURE_ACTIONS_FLAG", sizeof(SERVICE_FAILURE_ACTIONS_FLAG))                        \
  X("sizeof SERVICE_DESCRIPTIONW", sizeof(SERVICE_DESCRIPTIONW))                                        \
  X("SERVICE_STOPPED", SERVICE_STOPPED)                                                                 \
  X("SERVICE_START_PENDING", SERVICE_START_PENDING)                                                     \
  X("SERVICE_STOP_PENDING", SERVICE_STOP_PENDING)                                                       \
  X("SERVICE_RUNNING", SERVICE_RUNNING)                                                                 \
  X("SERVICE_ACCEPT_STOP", SERVICE_ACCEPT_STOP)                                                         \
  X("SERVICE_ACCEPT_SHUTDOWN", SERVICE_ACCEPT_SHUTDOWN)                                                 \
  X("SERVICE_ACCEPT_PRESHUTDOWN", SERVICE_ACCEPT_PRESHUTDOWN)                                           \
  X("SERVICE_CONTROL_STOP", SERVICE_CONTROL_STOP)                                                       \
  X("SERVICE_CONTROL_INTERROGATE", SERVICE_CONTROL_INTERROGATE)                                         \
  X("SERVICE_CONTROL_SHUTDOWN", SERVICE_CONTROL_SHUTDOWN)                                               \
  X("SERVICE_CONTROL_PRESHUTDOWN", SERVICE_CONTROL_PRESHUTDOWN)                                         \
  X("ERROR_CALL_NOT_IMPLEMENTED", ERROR_CALL_NOT_IMPLEMENTED)                                           \
  X("ERROR_FAILED_SERVICE_CONTROLLER_CONNECT", ERROR_FAILED_SERVICE_CONTROLLER_CONNECT)                 \
  X("ERROR_SERVICE_SPECIFIC_ERROR", ERROR_SERVICE_SPECIFIC_ERROR)                                       \
  X("sizeof SERVICE_STATUS", sizeof(SERVICE_STATUS))                                                    \
  X("sizeof SERVICE_TABLE_ENTRYW", sizeof(SERVICE_TABLE_ENTRYW))                                        \
  /* winnt.h / sddl.h / accctrl.h / fileapi.h: the control pipe's security */                           \
  X("SDDL_REVISION_1", SDDL_REVISION_1)                                                                 \
  X("SE_KERNEL_OBJECT", SE_KERNEL_OBJECT)                                                               \
  X("OWNER_SECURITY_INFORMATION", OWNER_SECURITY_INFORMATION)                                           \
  X("DACL_SECURITY_INFORMATION", DACL_SECURITY_INFORMATION)                                             \
  X("PROTECTED_DACL_SECURITY_INFORMATION", PROTECTED_DACL_SECURITY_INFORMATION)                         \
  X("READ_CONTROL", READ_CONTROL)                                                                       \
  X("WRITE_DAC", WRITE_DAC)                                                                             \
  X("WRITE_OWNER", WRITE_OWNER)                                                                         \
  X("SYNCHRONIZE", SYNCHRONIZE)                                                                         \
  X("FILE_READ_DATA", FILE_READ_DATA)                                                                   \
  X("FILE_WRITE_DATA", FILE_WRITE_DATA)                                                                 \
  X("FILE_APPEND_DATA", FILE_APPEND_DATA)                                                               \
  X("FILE_CREATE_PIPE_INSTANCE", FILE_CREATE_PIPE_INSTANCE)                                             \
  X("FILE_GENERIC_READ", FILE_GENERIC_READ)                                                             \
  X("FILE_GENERIC_WRITE", FILE_GENERIC_WRITE)                                                           \
  X("GENERIC_ALL", GENERIC_ALL)                                                                         \
  X("OPEN_EXISTING", OPEN_EXISTING)                                                                     \
  X("TOKEN_QUERY", TOKEN_QUERY)                                                                         \
  X("SECURITY_MAX_SID_SIZE", SECURITY_MAX_SID_SIZE)                                                     \
  X("SidTypeGroup", SidTypeGroup)                                                                       \
  X("SidTypeAlias", SidTypeAlias)                                                                       \
  X("SidTypeWellKnownGroup", SidTypeWellKnownGroup)                                                     \
  /* fileapi.h / winnt.h / winbase.h / accctrl.h / minwinbase.h: the state folder's security (core/src/util) */\
  X("FILE_SHARE_READ", FILE_SHARE_READ)                                                                 \
  X("FILE_SHARE_WRITE", FILE_SHARE_WRITE)                                                               \
  X("FILE_SHARE_DELETE", FILE_SHARE_DELETE)                                                             \
  X("FILE_FLAG_BACKUP_SEMANTICS", FILE_FLAG_BACKUP_SEMANTICS)                                           \
  X("SE_FILE_OBJECT", SE_FILE_OBJECT)                                                                   \
  X("sizeof SECURITY_ATTRIBUTES", sizeof(SECURITY_ATTRIBUTES))                                          \
  X("SECURITY_ATTRIBUTES.nLength", OFF(SECURITY_ATTRIBUTES, nLength))                                   \
  X("SECURITY_ATTRIBUTES.lpSecurityDescriptor", OFF(SECURITY_ATTRIBUTES, lpSecurityDescriptor))         \
  X("SECURITY_ATTRIBUTES.bInheritHandle", OFF(SECURITY_ATTRIBUTES, bInheritHandle))                     \
  WINTUN_VALUES(X)

#ifdef NGROKD_WINTUN_H
#define WINTUN_VALUES(X)                                                                                \
  X("WINTUN_MIN_RING_CAPACITY", WINTUN_MIN_RING_CAPACITY)                                               \
  X("WINTUN_MAX_RING_CAPACITY", WINTUN_MAX_RING_CAPACITY)                                               \
  X("WINTUN_MAX_IP_PACKET_SIZE", WINTUN_MAX_IP_PACKET_SIZE)
#else
#define WINTUN_VALUES(X)
#endif

#define AS_VALUE(name, expr) (unsigned long long)(expr),
#define AS_NAME(name, expr) name "\0"
#define AS_PRINT(name, expr) printf("%s %llu\n", name, (unsigned long long)(expr));

__attribute__((used, section(".ngkval"))) const unsigned long long ngrokd_probe_values[] = { VALUES(AS_VALUE) };
__attribute__((used, section(".ngkname"))) const char ngrokd_probe_names[] = VALUES(AS_NAME);
/* NET_LUID's bitfields (ifdef.h) as the 64-bit Value with one field set to 1: where each field starts */
__attribute__((used, section(".ngkluid"))) const NET_LUID ngrokd_probe_luids[] = {
  { .Info = { .NetLuidIndex = 1 } },
  { .Info = { .IfType = 1 } },
};

static void print_row(const char *label, const MIB_UNICASTIPADDRESS_ROW *row) {
  const unsigned char *b = (const unsigned char *)row;
  printf("%s ", label);
  for (size_t i = 0; i < sizeof(*row); i++) printf("%02x", b[i]);
  printf("\n");
}

/* What the running system's iphlpapi does: only meaningful under Wine or on Windows. One fact per run, because Wine
 * aborts the whole process when an unimplemented function is called. */
static void fact_initialize(void) {
  MIB_UNICASTIPADDRESS_ROW row;
  memset(&row, 0xAA, sizeof(row));
  InitializeUnicastIpAddressEntry(&row);
  print_row("runtime:InitializeUnicastIpAddressEntry", &row);
}

static void fact_table(void) {
  PMIB_UNICASTIPADDRESS_TABLE table = NULL;
  DWORD status = GetUnicastIpAddressTable(AF_INET, &table);
  printf("runtime:GetUnicastIpAddressTable(AF_INET) %lu\n", (unsigned long)status);
  if (status == NO_ERROR && table) {
    for (ULONG i = 0; i < table->NumEntries; i++) {
      const MIB_UNICASTIPADDRESS_ROW *r = &table->Table[i];
      const unsigned char *a = (const unsigned char *)&r->Address.Ipv4.sin_addr;
      printf("runtime:row %u.%u.%u.%u/%u luid=0x%016llx iftype=%u index=%lu skip=%u dad=%d\n", a[0], a[1], a[2], a[3], r->OnLinkPrefixLength,
             (unsigned long long)r->InterfaceLuid.Value, (unsigned)r->InterfaceLuid.Info.IfType, (unsigned long)r->InterfaceIndex,
             (unsigned)r->SkipAsSource, (int)r->DadState);
    }
    FreeMibTable(table);
  }
}

/* CreateUnicastIpAddressEntry / DeleteUnicastIpAddressEntry as ngrokd calls them, on the loopback interface */
static void fact_create_delete(void) {
  MIB_UNICASTIPADDRESS_ROW add;
  memset(&add, 0, sizeof(add));
  add.Address.Ipv4.sin_family = AF_INET;
  add.Address.Ipv4.sin_addr.s_addr = htonl(0x7f6b0002); /* 127.107.0.2 */
  add.InterfaceLuid.Info.IfType = IF_TYPE_SOFTWARE_LOOPBACK;
  add.PrefixOrigin = IpPrefixOriginManual;
  add.SuffixOrigin = IpSuffixOriginManual;
  add.ValidLifetime = add.PreferredLifetime = 0xffffffff;
  add.OnLinkPrefixLength = 32;
  add.SkipAsSource = TRUE;
  add.DadState = IpDadStatePreferred;
  printf("runtime:CreateUnicastIpAddressEntry %lu\n", (unsigned long)CreateUnicastIpAddressEntry(&add));
  printf("runtime:DeleteUnicastIpAddressEntry %lu\n", (unsigned long)DeleteUnicastIpAddressEntry(&add));
}

static void fact_dnsapi(void) {
  HMODULE dnsapi = LoadLibraryExW(L"dnsapi.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32);
  printf("runtime:dnsapi!DnsFlushResolverCache %s\n", dnsapi && GetProcAddress(dnsapi, "DnsFlushResolverCache") ? "exported" : "missing");
}

int main(int argc, char **argv) {
  VALUES(AS_PRINT)
  printf("NET_LUID.Info.NetLuidIndex=1 %llu\n", (unsigned long long)ngrokd_probe_luids[0].Value);
  printf("NET_LUID.Info.IfType=1 %llu\n", (unsigned long long)ngrokd_probe_luids[1].Value);
  if (argc > 2 && strcmp(argv[1], "--runtime") == 0) {
    if (strcmp(argv[2], "initialize") == 0) fact_initialize();
    if (strcmp(argv[2], "table") == 0) fact_table();
    if (strcmp(argv[2], "create-delete") == 0) fact_create_delete();
    if (strcmp(argv[2], "dnsapi") == 0) fact_dnsapi();
  }
  return 0;
}
