<?xml version="1.0" encoding="UTF-8"?>
<!-- Legacy (pre-QCVN) SOAP document packet, vn-standards.md §1.10: SOAP-ENV:Envelope with
     Header/{MessageHeader, TraceHeaderList, ErrorList} and Body/Manifest (xlink:href="cid:..."),
     attachments in a separate file -> a QCVN 102 document packet (header and manifest; no
     AttachmentEncoded). Renamed on the way [I: the legacy names are known, their meaning is
     inferred]: PromulgationInfo/Date -> PromulgationDate, Author -> SignerInfo/FullName,
     type -> DocumentType/TypeName; dd/MM/yyyy dates and timestamps -> yyyy/MM/dd. ErrorList is
     transport state, not document data, and is dropped. Every other header element (ResponseFor,
     Bussiness with ReplacementInfoList, ...) is carried over by local name, because legacy
     producers bind the edXML prefix to varying URIs. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016" exclude-result-prefixes="">
  <xsl:output method="xml" encoding="UTF-8" indent="yes"/>

  <xsl:template match="/">
    <xsl:variable name="header" select="/*[local-name()='Envelope']/*[local-name()='Header']"/>
    <xsl:variable name="mh" select="$header/*[local-name()='MessageHeader']"/>
    <xsl:if test="count($mh) != 1">
      <xsl:message terminate="yes">expected one SOAP-ENV:Header/MessageHeader</xsl:message>
    </xsl:if>
    <edXML:edXML>
      <edXML:edXMLEnvelope>
        <edXML:edXMLHeader>
          <edXML:MessageHeader>
            <xsl:apply-templates select="$mh/*[local-name()!='Author' and local-name()!='type']"/>
            <xsl:if test="$mh/*[local-name()='type']">
              <edXML:DocumentType><edXML:TypeName><xsl:value-of select="normalize-space($mh/*[local-name()='type'])"/></edXML:TypeName></edXML:DocumentType>
            </xsl:if>
            <xsl:if test="$mh/*[local-name()='Author']">
              <edXML:SignerInfo><edXML:FullName><xsl:value-of select="normalize-space($mh/*[local-name()='Author'])"/></edXML:FullName></edXML:SignerInfo>
            </xsl:if>
          </edXML:MessageHeader>
          <xsl:apply-templates select="$header/*[local-name()='TraceHeaderList']"/>
        </edXML:edXMLHeader>
        <edXML:edXMLBody>
          <edXML:edXMLManifest version="1.0">
            <xsl:for-each select="/*[local-name()='Envelope']/*[local-name()='Body']/*[local-name()='Manifest']/*[local-name()='Reference']">
              <edXML:Reference>
                <edXML:ContentId><xsl:value-of select="normalize-space(@*[local-name()='href'])"/></edXML:ContentId>
                <xsl:apply-templates select="*[local-name()!='ContentId']"/>
              </edXML:Reference>
            </xsl:for-each>
          </edXML:edXMLManifest>
        </edXML:edXMLBody>
      </edXML:edXMLEnvelope>
    </edXML:edXML>
  </xsl:template>

  <!-- PromulgationInfo/Date -> PromulgationDate -->
  <xsl:template match="*[local-name()='Date' and ../*[local-name()='Place' or local-name()='Date'] and local-name(..)='PromulgationInfo']">
    <edXML:PromulgationDate><xsl:call-template name="date"/></edXML:PromulgationDate>
  </xsl:template>
  <xsl:template match="*[local-name()='PromulgationDate' or local-name()='DueDate' or local-name()='Timestamp']">
    <xsl:element name="edXML:{local-name()}" namespace="http://www.mic.gov.vn/TBT/QCVN_102_2016">
      <xsl:call-template name="date"/>
    </xsl:element>
  </xsl:template>

  <!-- dd/MM/yyyy[ HH:mm:ss] -> yyyy/MM/dd[ HH:mm:ss]; anything else is copied as is -->
  <xsl:template name="date">
    <xsl:variable name="t" select="normalize-space(.)"/>
    <xsl:choose>
      <xsl:when test="substring($t, 3, 1) = '/' and substring($t, 6, 1) = '/'">
        <xsl:value-of select="concat(substring($t, 7, 4), '/', substring($t, 4, 2), '/', substring($t, 1, 2), substring($t, 11))"/>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$t"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="*">
    <xsl:element name="edXML:{local-name()}" namespace="http://www.mic.gov.vn/TBT/QCVN_102_2016">
      <xsl:apply-templates select="*|text()"/>
    </xsl:element>
  </xsl:template>

  <xsl:template match="text()"><xsl:value-of select="."/></xsl:template>
</xsl:stylesheet>
